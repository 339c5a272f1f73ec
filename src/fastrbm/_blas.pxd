# cython: language_level=3
"""The GEMM wrappers of the compiled engines (_gibbs, _mlp).

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


# Row-major products.  The kernels keep C-ordered (row-major) arrays; BLAS is
# column-major, where a row-major matrix reads as its transpose.  These say
# the product in row-major terms and pass BLAS the transposed problem
# (out^T = ...), so a call site reads as the algebra it computes.  ``rows``
# and ``cols`` are out's shape, ``inner`` the summed dimension; ld* are the
# row strides (in elements) of the row-major operands.

cdef inline void matmul_ab(int rows, int cols, int inner, floating alpha,
                           const floating *x, int ldx, const floating *y, int ldy,
                           floating beta, floating *out, int ld_out) noexcept nogil:
    """out (rows, cols) = alpha x (rows, inner) @ y (inner, cols) + beta out."""
    gemm(False, False, cols, rows, inner, alpha, y, ldy, x, ldx, beta, out, ld_out)


cdef inline void matmul_abt(int rows, int cols, int inner, floating alpha,
                            const floating *x, int ldx, const floating *y, int ldy,
                            floating beta, floating *out, int ld_out) noexcept nogil:
    """out (rows, cols) = alpha x (rows, inner) @ y (cols, inner)^T + beta out."""
    gemm(True, False, cols, rows, inner, alpha, y, ldy, x, ldx, beta, out, ld_out)


cdef inline void matmul_atb(int rows, int cols, int inner, floating alpha,
                            const floating *x, int ldx, const floating *y, int ldy,
                            floating beta, floating *out, int ld_out) noexcept nogil:
    """out (rows, cols) = alpha x (inner, rows)^T @ y (inner, cols) + beta out."""
    gemm(False, True, cols, rows, inner, alpha, y, ldy, x, ldx, beta, out, ld_out)
