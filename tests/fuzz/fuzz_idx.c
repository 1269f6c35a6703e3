/* The IDX reader (plain and gzip-compressed files). */
#include "io/idx.h"
#include "tests/fuzz/fuzz_util.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path(".idx");
    fuzz_write(path, data, size);
    idx_array a;
    if (idx_read(path, &a) == 0) {
        size_t n = 1;
        for (int d = 0; d < a.ndim; d++)
            n *= a.dims[d];
        if (n != a.count || (n && a.data[n - 1] != a.data[n - 1]))
            abort();
        idx_free(&a);
    }
    return 0;
}
