#include "png.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BORDER 2
#define BORDER_GRAY 128

/* The grid as one picture: rows x cols cells of (h + BORDER) x (w + BORDER). */
static uint8_t *layout(const uint8_t *images, int n, int h, int w, int cols, int *width,
                       int *height)
{
    const int rows = (n + cols - 1) / cols;
    *width = cols * (w + BORDER) + BORDER;
    *height = rows * (h + BORDER) + BORDER;
    uint8_t *pic = malloc((size_t)*width * (size_t)*height);
    if (!pic)
        return NULL;
    memset(pic, BORDER_GRAY, (size_t)*width * (size_t)*height);
    for (int k = 0; k < n; k++) {
        const int x0 = BORDER + (k % cols) * (w + BORDER), y0 = BORDER + (k / cols) * (h + BORDER);
        for (int y = 0; y < h; y++)
            memcpy(pic + (size_t)(y0 + y) * *width + x0, images + ((size_t)k * h + y) * w,
                   (size_t)w);
    }
    return pic;
}

int png_write_grid(const char *path, const uint8_t *images, int n, int h, int w, int cols)
{
    int width, height;
    uint8_t *pic = layout(images, n, h, w, cols, &width, &height);
    FILE *f = pic ? fopen(path, "wb") : NULL;
    if (!f) {
        fprintf(stderr, "trainer: %s: cannot write: %s\n", path, pic ? strerror(errno) : "out of memory");
        free(pic);
        return -1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *rows = malloc((size_t)height * sizeof *rows);
    int rc = -1;
    if (!png || !info || !rows || setjmp(png_jmpbuf(png)))
        goto out;
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    for (int y = 0; y < height; y++)
        rows[y] = pic + (size_t)y * width;
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    rc = 0;
out:
    if (png)
        png_destroy_write_struct(&png, info ? &info : NULL);
    if (fclose(f) != 0)
        rc = -1;
    if (rc != 0)
        fprintf(stderr, "trainer: %s: cannot write the PNG picture\n", path);
    free(rows);
    free(pic);
    return rc;
}
