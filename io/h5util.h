/* HDF5 plumbing shared by io/: checked calls and root attributes.
 * Only io/ includes this (and so hdf5.h). */
#ifndef TRAINER_H5UTIL_H
#define TRAINER_H5UTIL_H

#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>

/* A failing call prints one line naming the file being worked on and jumps
 * to the function's `fail` label. HDF5's own error-stack printing is off
 * (io_quiet_hdf5), so a user sees this line, not library internals. */
#define H5TRY(call, path, what)                                                     \
    do {                                                                            \
        if ((call) < 0) {                                                           \
            fprintf(stderr, "trainer: %s: %s (%s:%d)\n", (path), (what), __FILE__,  \
                    __LINE__);                                                      \
            goto fail;                                                              \
        }                                                                           \
    } while (0)

/* Scalar attributes: write returns < 0 on failure; read returns 0, or -1
 * when absent or unreadable. */
herr_t h5_attr_write_str(hid_t obj, const char *name, const char *value);
herr_t h5_attr_write_num(hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
                         const void *value);
int h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t size);
int h5_attr_read_num(hid_t obj, const char *name, hid_t mem_type, void *value);

static inline herr_t h5_attr_write_i64(hid_t obj, const char *name, long long value)
{
    return h5_attr_write_num(obj, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, &value);
}

/* An int32 array attribute: write; read at most max values and return how
 * many (0 when absent, -1 when unreadable). */
herr_t h5_attr_write_i32s(hid_t obj, const char *name, const int32_t *v, int n);
int h5_attr_read_i32s(hid_t obj, const char *name, int32_t *v, int max);

#endif
