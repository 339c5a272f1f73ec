# cython: language_level=3
"""Pieces of the tempered sweeps (_tempering.pyx) that the categorical
tempered sweep (_categorical.pyx) runs too: one definition, so both compute
their hidden fields, base-model terms and swap energies with the same
operations in the same order."""
from cython cimport floating
from libc.math cimport exp, fabs, log1p
from fastrbm._blas cimport matmul_abt

cdef extern from "_tempering.h" nogil:
    double fr_softplus_sum_f32(const float *a, float beta, const float *yb, int n)
    # the AVX2 switch of the float32 swap energies: static in the header, so
    # every module that includes it sets its own copy
    int fr_tempering_set_simd(int enable)


cdef inline void fields(const floating *x, floating *a, double *d, const floating *M,
                        const floating *y_bias, const double *dxb, int nr, int Dx,
                        int Dy) noexcept nogil:
    """a = x M^T + c_y and d = (b_x0 - b_x).x of nr rows (d in float64, by 4
    interleaved partial sums of the terms j = k mod 4, added in a fixed order)."""
    cdef int i, j
    cdef double s0, s1, s2, s3
    cdef const floating *xr
    matmul_abt(nr, Dy, Dx, 1, x, Dx, M, Dx, 0, a, Dy)
    for i in range(nr):
        for j in range(Dy):
            a[i * Dy + j] = a[i * Dy + j] + y_bias[j]
        xr = x + i * Dx
        s0 = s1 = s2 = s3 = 0
        j = 0
        while j + 4 <= Dx:
            s0 = s0 + dxb[j] * xr[j]
            s1 = s1 + dxb[j + 1] * xr[j + 1]
            s2 = s2 + dxb[j + 2] * xr[j + 2]
            s3 = s3 + dxb[j + 3] * xr[j + 3]
            j = j + 4
        while j < Dx:
            s0 = s0 + dxb[j] * xr[j]
            j = j + 1
        d[i] = (s0 + s1) + (s2 + s3)


cdef inline double softplus_sum(const floating *a, floating beta, const floating *yb, int n,
                                floating *tmp) noexcept nogil:
    """sum_j softplus(beta a_j + yb_j), the input formed in the model dtype
    (as the draws see it), summed in float64 by 4 interleaved partial sums
    in a fixed order.  float32: fr_softplus_sum_f32 (_tempering.h);
    float64: the softplus of libm (tmp holds the n values)."""
    cdef int j
    cdef floating z
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0
    if floating is float:
        return fr_softplus_sum_f32(a, beta, yb, n)
    for j in range(n):
        z = beta * a[j] + yb[j]
        tmp[j] = (z if z > 0 else 0.0) + log1p(exp(-fabs(z)))
    j = 0
    while j + 4 <= n:
        s0 += tmp[j]
        s1 += tmp[j + 1]
        s2 += tmp[j + 2]
        s3 += tmp[j + 3]
        j += 4
    while j < n:
        s0 += tmp[j]
        j += 1
    return (s0 + s1) + (s2 + s3)
