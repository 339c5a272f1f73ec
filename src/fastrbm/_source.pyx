# cython: language_level=3, cdivision=True
# cython: initializedcheck=False, nonecheck=False, embedsignature=True
"""Data reading for the CPU kernels: the user's X (dense or CSR, float32,
float64, uint8 or bool) read in place, and the validation scan."""
import numpy as np
cimport numpy as cnp
from libc.string cimport memset

cnp.import_array()


_DTYPE_CODES = {np.dtype(np.float32): DT_F32, np.dtype(np.float64): DT_F64,
                np.dtype(np.uint8): DT_U8, np.dtype(np.bool_): DT_BOOL}


cdef class DataSource:
    """Read-only view of the user's X (dense or CSR) for the kernels.

    Nothing is copied: the kernels convert rows on the fly (uint8 means
    intensity / 255, bool means 0/1, float64 is rounded to float32 for a
    float32 model; with ``clip`` values are clamped to [0, 1]).  The input must
    have been validated by the caller.
    """
    @property
    def shape(self):
        return (self.src.n_rows, self.src.n_cols)

    @property
    def clip(self):
        return bool(self.src.clip)

    def __cinit__(self, X, bint clip=False):
        cdef cnp.ndarray arr, data, indptr, indices
        memset(&self.src, 0, sizeof(Source))
        if getattr(X, "format", None) == "csr":
            data = np.ascontiguousarray(X.data)
            indptr = np.ascontiguousarray(X.indptr)
            indices = np.ascontiguousarray(X.indices)
            if indptr.dtype != indices.dtype or indptr.dtype not in (np.int32, np.int64):
                indptr = indptr.astype(np.int64)
                indices = indices.astype(np.int64)
            self.src.kind = SRC_CSR
            self.src.dtype = _DTYPE_CODES[data.dtype]
            self.src.itemsize = data.dtype.itemsize
            self.src.index64 = indptr.dtype == np.int64
            self.src.data = <const char *>cnp.PyArray_DATA(data)
            self.src.indptr = <const char *>cnp.PyArray_DATA(indptr)
            self.src.indices = <const char *>cnp.PyArray_DATA(indices)
            self._keep = (X, data, indptr, indices)
        else:
            arr = X
            self.src.kind = SRC_DENSE
            self.src.dtype = _DTYPE_CODES[arr.dtype]
            self.src.itemsize = arr.dtype.itemsize
            self.src.data = <const char *>cnp.PyArray_DATA(arr)
            self.src.stride0 = arr.strides[0]
            self.src.stride1 = arr.strides[1]
            self._keep = X
        self.src.n_rows = X.shape[0]
        self.src.n_cols = X.shape[1]
        self.src.clip = clip


def as_source(X, clip=False):
    """X as a :class:`DataSource` (unchanged if it already is one)."""
    return X if isinstance(X, DataSource) else DataSource(X, clip)


def find_invalid(DataSource source):
    """First stored value that is NaN, infinite or (unless the source clips)
    outside [0, 1].

    Returns ``None`` or ``(row, column, value)``.  For CSR input a column index
    out of range is reported with ``value=None``.  One pass, no temporaries.
    """
    cdef const Source *s = &source.src
    cdef Py_ssize_t i, j, p, p0, p1, col
    cdef double x = 0, like = 0
    cdef Py_ssize_t bad_row = -1, bad_col = -1
    cdef int bad_index = 0
    if s.dtype == DT_U8 or s.dtype == DT_BOOL:
        if s.kind == SRC_DENSE:
            return None
    with nogil:
        if s.kind == SRC_DENSE:
            for i in range(s.n_rows):
                for j in range(s.n_cols):
                    x = load_value(s.dtype, s.data + i * s.stride0 + j * s.stride1, like)
                    if not ((x - x == 0) if s.clip else (x >= 0.0 and x <= 1.0)):
                        bad_row = i
                        bad_col = j
                        break
                if bad_row >= 0:
                    break
        else:
            for i in range(s.n_rows):
                csr_row_span(s, i, &p0, &p1)
                for p in range(p0, p1):
                    col = csr_column(s, p)
                    if col < 0 or col >= s.n_cols:
                        bad_row = i
                        bad_col = col
                        bad_index = 1
                        break
                    x = load_value(s.dtype, s.data + p * s.itemsize, like)
                    if not ((x - x == 0) if s.clip else (x >= 0.0 and x <= 1.0)):
                        bad_row = i
                        bad_col = col
                        break
                if bad_row >= 0:
                    break
    if bad_row < 0:
        return None
    return (bad_row, bad_col, None if bad_index else x)
