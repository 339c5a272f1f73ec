# cython: language_level=3
"""The one GEMM wrapper of the compiled engines (_gibbs, _mlp).

BLAS is reached only through scipy.linalg.cython_blas; ``floating`` gives
sgemm for float32 and dgemm for float64 from one source.
"""
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
                      const floating *a, int lda, const floating *b, int ldb,
                      floating beta, floating *c, int ldc) noexcept nogil:
    """Column-major GEMM (BLAS convention) for either precision."""
    cdef char transa = 84 if trans_a else 78  # 'T' / 'N'
    cdef char transb = 84 if trans_b else 78
    if m == 0 or n == 0:
        return
    if floating is float:
        sgemm(&transa, &transb, &m, &n, &k, &alpha, <float *>a, &lda,
              <float *>b, &ldb, &beta, c, &ldc)
    else:
        dgemm(&transa, &transb, &m, &n, &k, &alpha, <double *>a, &lda,
              <double *>b, &ldb, &beta, c, &ldc)
