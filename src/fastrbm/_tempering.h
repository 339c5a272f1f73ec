/* The swap energies of the parallel-tempering kernel (_tempering.pyx):
 * sums of softplus over a replica's hidden field, in float32.
 *
 * softplus(z) = max(z, 0) + log1p(e), e = exp(-|z|) in (0, 1]: e by fr_expf
 * of _kernels.h (about 2 ulp), log1p(e) = 2 atanh(s) with s = e / (2 + e) in
 * (0, 1/3], summed to s^15 (the next term is below 1e-9 relative).  A scalar
 * path and an AVX2 path (8 lanes, chosen at run time) that does the same
 * float operations in the same order, so the two agree bit for bit (no FMA
 * in either; tests/test_tempering.py switches the path).  The float64
 * kernels use libm instead. */
#ifndef FR_TEMPERING_H
#define FR_TEMPERING_H

#include "_kernels.h"

static inline float fr_softplus_f32(float z)
{
    float m = z > 0.0f ? z : 0.0f;
    float e = fr_expf(-fabsf(z));
    float s = e / (2.0f + e);
    float s2 = s * s;
    float p = 1.0f + s2 * (0.333333333f + s2 * (0.2f + s2 * (0.142857143f + s2 * (
        0.111111111f + s2 * (0.0909090909f + s2 * (0.0769230769f + s2 * 0.0666666667f))))));
    return m + (2.0f * s) * p;
}

#if FR_HAVE_AVX2_PATH
/* fr_softplus_f32 on 8 lanes, operation for operation (fr_expf by
 * fr_exp_clamped_avx2 of _kernels.h). */
__attribute__((target("avx2")))
static inline __m256 fr_softplus_avx2(__m256 z)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 m = _mm256_max_ps(z, _mm256_setzero_ps());
    __m256 x = _mm256_or_ps(z, _mm256_set1_ps(-0.0f));          /* -|z| */
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    x = _mm256_min_ps(x, _mm256_set1_ps(88.0f));
    __m256 e = fr_exp_clamped_avx2(x);
    __m256 s = _mm256_div_ps(e, _mm256_add_ps(_mm256_set1_ps(2.0f), e));
    __m256 s2 = _mm256_mul_ps(s, s);
    __m256 p = _mm256_set1_ps(0.0666666667f);
    p = _mm256_add_ps(_mm256_set1_ps(0.0769230769f), _mm256_mul_ps(s2, p));
    p = _mm256_add_ps(_mm256_set1_ps(0.0909090909f), _mm256_mul_ps(s2, p));
    p = _mm256_add_ps(_mm256_set1_ps(0.111111111f), _mm256_mul_ps(s2, p));
    p = _mm256_add_ps(_mm256_set1_ps(0.142857143f), _mm256_mul_ps(s2, p));
    p = _mm256_add_ps(_mm256_set1_ps(0.2f), _mm256_mul_ps(s2, p));
    p = _mm256_add_ps(_mm256_set1_ps(0.333333333f), _mm256_mul_ps(s2, p));
    p = _mm256_add_ps(one, _mm256_mul_ps(s2, p));
    return _mm256_add_ps(m, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(2.0f), s), p));
}
#endif

#if FR_HAVE_AVX2_PATH
/* The terms j < 8 floor(n / 8) of fr_softplus_sum_f32 on 8 lanes: lane k of
 * the float64 accumulator takes the terms j = k mod 4 in order (the low then
 * the high half of each 8), as the scalar partial sums do.  Returns the
 * first j left to the caller. */
__attribute__((target("avx2")))
static int fr_softplus_sum_avx2(const float *a, float beta, const float *yb, int n,
                                double *s0, double *s1, double *s2, double *s3)
{
    __m256d acc = _mm256_setzero_pd();
    const __m256 vb = _mm256_set1_ps(beta);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 z = _mm256_add_ps(_mm256_mul_ps(vb, _mm256_loadu_ps(a + j)),
                                 _mm256_loadu_ps(yb + j));
        __m256 t = fr_softplus_avx2(z);
        acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(t)));
        acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(t, 1)));
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, acc);
    *s0 = lanes[0];
    *s1 = lanes[1];
    *s2 = lanes[2];
    *s3 = lanes[3];
    return j;
}
#endif

static int fr_tempering_avx2 = 0;

/* Use AVX2 when the CPU has it (enable != 0) or the scalar path; returns
 * whether AVX2 was in use. */
static int fr_tempering_set_simd(int enable)
{
    int previous = fr_tempering_avx2;
#if FR_HAVE_AVX2_PATH
    __builtin_cpu_init();
    fr_tempering_avx2 = enable && __builtin_cpu_supports("avx2");
#else
    fr_tempering_avx2 = 0;
#endif
    return previous;
}

/* sum_j softplus(beta a_j + yb_j): the input formed in float32 (as the draws
 * see it), the softplus in float32, the sum in float64 over 4 interleaved
 * partial sums s_k (of the terms j = k mod 4) added in a fixed order, on
 * either path. */
static double fr_softplus_sum_f32(const float *a, float beta, const float *yb, int n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int j = 0;
#if FR_HAVE_AVX2_PATH
    if (fr_tempering_avx2)
        j = fr_softplus_sum_avx2(a, beta, yb, n, &s0, &s1, &s2, &s3);
#endif
    for (; j < n; j++) {
        double t = (double)fr_softplus_f32(beta * a[j] + yb[j]);
        switch (j & 3) {
        case 0: s0 += t; break;
        case 1: s1 += t; break;
        case 2: s2 += t; break;
        default: s3 += t; break;
        }
    }
    return (s0 + s1) + (s2 + s3);
}

#endif
