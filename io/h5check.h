/* HDF5 calls are checked where they are made. A failing call prints one line
 * naming the file being worked on and jumps to the function's cleanup. HDF5's
 * own error stack printing is switched off (io_quiet_hdf5) so that a user sees
 * our line, not a page of library internals. */
#ifndef TRAINER_H5CHECK_H
#define TRAINER_H5CHECK_H

#include <hdf5.h>
#include <stdio.h>

#define H5TRY(call, path, what)                                                   \
    do {                                                                            \
        if ((call) < 0) {                                                           \
            fprintf(stderr, "trainer: %s: %s (%s:%d)\n", (path), (what), __FILE__,  \
                    __LINE__);                                                      \
            goto fail;                                                              \
        }                                                                           \
    } while (0)

#endif
