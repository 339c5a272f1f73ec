# cython: language_level=3
"""The user's X as the CPU kernels read it (see _source.pyx)."""
from cython cimport floating
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.string cimport memset

cdef enum:
    SRC_DENSE = 0
    SRC_CSR = 1
    DT_F32 = 0
    DT_F64 = 1
    DT_U8 = 2
    DT_BOOL = 3

cdef struct Source:
    int kind
    int dtype
    int index64
    Py_ssize_t itemsize
    const char *data
    Py_ssize_t stride0
    Py_ssize_t stride1
    const char *indptr
    const char *indices
    Py_ssize_t n_rows
    Py_ssize_t n_cols
    int clip


cdef class DataSource:
    cdef Source src
    cdef object _keep


cdef inline floating load_value(int dtype, const char *ptr, floating like) noexcept nogil:
    if dtype == DT_F32:
        return <floating>(<const float *>ptr)[0]
    elif dtype == DT_F64:
        return <floating>(<const double *>ptr)[0]
    elif dtype == DT_U8:
        # rounded in the model's precision, as numpy's x.astype(dtype) / 255
        return (<floating>(<const uint8_t *>ptr)[0]) / <floating>255.0
    else:
        return 1 if (<const uint8_t *>ptr)[0] else 0


cdef inline void csr_row_span(const Source *s, Py_ssize_t i, Py_ssize_t *p0,
                              Py_ssize_t *p1) noexcept nogil:
    """[p0, p1): the positions of row i's stored values (CSR source)."""
    if s.index64:
        p0[0] = (<const int64_t *>s.indptr)[i]
        p1[0] = (<const int64_t *>s.indptr)[i + 1]
    else:
        p0[0] = (<const int32_t *>s.indptr)[i]
        p1[0] = (<const int32_t *>s.indptr)[i + 1]


cdef inline Py_ssize_t csr_column(const Source *s, Py_ssize_t p) noexcept nogil:
    """The column of the stored value at position p (CSR source)."""
    if s.index64:
        return (<const int64_t *>s.indices)[p]
    return (<const int32_t *>s.indices)[p]


cdef inline void gather_row(const Source *s, Py_ssize_t i, floating *out) noexcept nogil:
    """Row i of the source as dense floats in out[0:n_cols]."""
    cdef Py_ssize_t j, p, p0, p1, col
    cdef const char *base
    cdef floating like = 0
    if s.kind == SRC_DENSE:
        base = s.data + i * s.stride0
        if s.dtype == DT_F32 and s.stride1 == 4:
            for j in range(s.n_cols):
                out[j] = <floating>(<const float *>base)[j]
        elif s.dtype == DT_F64 and s.stride1 == 8:
            for j in range(s.n_cols):
                out[j] = <floating>(<const double *>base)[j]
        else:
            for j in range(s.n_cols):
                out[j] = load_value(s.dtype, base + j * s.stride1, like)
    else:
        memset(out, 0, s.n_cols * sizeof(floating))
        csr_row_span(s, i, &p0, &p1)
        for p in range(p0, p1):
            col = csr_column(s, p)
            out[col] = load_value(s.dtype, s.data + p * s.itemsize, like)
    if s.clip:
        for j in range(s.n_cols):
            like = out[j]
            out[j] = 0 if like < 0 else (1 if like > 1 else like)
