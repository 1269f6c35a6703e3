/* PNG pictures of images, through libpng. */
#ifndef TRAINER_PNG_H
#define TRAINER_PNG_H

#include <stdint.h>

/* n grayscale images of h x w bytes, row after row, as a grid of `cols`
 * columns with a 2-pixel gray border, into an 8-bit grayscale PNG. Returns
 * 0, or -1 after one line naming the file. */
int png_write_grid(const char *path, const uint8_t *images, int n, int h, int w, int cols);

#endif
