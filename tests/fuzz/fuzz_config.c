/* The config-file parser, then the whole configuration build (defaults,
 * ownership, checks), as `trainer train --config FILE` does it. */
#include "trainer/config.h"
#include "trainer/model.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path(".conf");
    fuzz_write(path, data, size);
    char *argv[] = {"train", "--config", (char *)path, NULL};
    cfg_list file = {0}, flags = {0};
    if (config_parse_args(CMD_TRAIN, 3, argv, &file, &flags, 1) == 0) {
        const cfg_list *layers[2] = {&file, &flags};
        config c;
        if (config_build(&c, CMD_TRAIN, layers, 2, 1) == 0) {
            cfg_list out = {0};
            config_to_list(&c, &out); /* and what a checkpoint would store */
            cfg_list_free(&out);
        }
        config_free(&c);
    }
    cfg_list_free(&file);
    cfg_list_free(&flags);
    return 0;
}
