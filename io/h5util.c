#include "h5util.h"

#include "shards.h"

#include <stdlib.h>
#include <string.h>

void io_quiet_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

herr_t h5_attr_write_str(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR), a = -1;
    herr_t rc = -1;
    if (t >= 0 && sp >= 0 && H5Tset_size(t, strlen(value) + 1) >= 0) {
        a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        if (a >= 0 && H5Awrite(a, t, value) >= 0)
            rc = 0;
    }
    if (a >= 0)
        H5Aclose(a);
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    return rc;
}

herr_t h5_attr_write_num(hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
                       const void *value)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    if (sp < 0)
        return -1;
    hid_t a = H5Acreate2(obj, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = (a >= 0 && H5Awrite(a, mem_type, value) >= 0) ? 0 : -1;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

herr_t h5_attr_write_i32s(hid_t obj, const char *name, const int32_t *v, int n)
{
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    if (sp < 0)
        return -1;
    hid_t a = H5Acreate2(obj, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = (a >= 0 && H5Awrite(a, H5T_NATIVE_INT32, v) >= 0) ? 0 : -1;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

int h5_attr_read_i32s(hid_t obj, const char *name, int32_t *v, int max)
{
    if (H5Aexists(obj, name) <= 0)
        return 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    int n = -1;
    if (sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1) {
        hsize_t d;
        H5Sget_simple_extent_dims(sp, &d, NULL);
        if (d <= (hsize_t)max && H5Aread(a, H5T_NATIVE_INT32, v) >= 0)
            n = (int)d;
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (a >= 0)
        H5Aclose(a);
    return n;
}

int h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t size)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ft = a >= 0 ? H5Aget_type(a) : -1;
    int rc = -1;
    if (ft >= 0 && H5Tget_class(ft) == H5T_STRING && !H5Tis_variable_str(ft)) {
        size_t n = H5Tget_size(ft);
        char *tmp = calloc(n + 1, 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, n);
        if (tmp && H5Aread(a, mt, tmp) >= 0) {
            snprintf(buf, size, "%s", tmp);
            rc = 0;
        }
        H5Tclose(mt);
        free(tmp);
    }
    if (ft >= 0)
        H5Tclose(ft);
    if (a >= 0)
        H5Aclose(a);
    return rc;
}

int h5_attr_read_num(hid_t obj, const char *name, hid_t mem_type, void *value)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    int rc = (a >= 0 && H5Aread(a, mem_type, value) >= 0) ? 0 : -1;
    if (a >= 0)
        H5Aclose(a);
    return rc;
}

