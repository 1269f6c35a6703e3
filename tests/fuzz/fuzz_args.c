/* The command-line parser of every command and the configuration build:
 * the input is split at NUL bytes into argv; its first byte picks the
 * command. */
#include "trainer/config.h"
#include "trainer/model.h"
#include "tests/fuzz/fuzz_util.h"

#include <string.h>

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const enum command cmds[4] = {CMD_PREPARE, CMD_TRAIN, CMD_EVAL, CMD_SAMPLE};
    enum command cmd = cmds[data[0] % 4];
    char *text = malloc(size + 1);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    char *argv[MAX_ARGS + 2] = {"command"};
    int argc = 1;
    for (size_t i = 0; i < size - 1 && argc <= MAX_ARGS; i += strlen(text + i) + 1)
        argv[argc++] = text + i;
    argv[argc] = NULL;
    cfg_list file = {0}, flags = {0};
    if (config_parse_args(cmd, argc, argv, &file, &flags, 1) == 0) {
        const cfg_list *layers[2] = {&file, &flags};
        config c;
        config_build(&c, cmd, layers, 2, 1);
        config_free(&c);
    }
    cfg_list_free(&file);
    cfg_list_free(&flags);
    free(text);
    return 0;
}
