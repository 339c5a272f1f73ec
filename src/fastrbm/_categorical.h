/* Vector helpers of the categorical kernels (_categorical.pyx).
 *
 * The exp pass of the softmax: x[c] = fr_expf(x[c]) over a row of logits,
 * 8 lanes with AVX2 (chosen at run time) or 4 with SSE2 (every x86-64 CPU),
 * operation for operation as the scalar fr_expf of _kernels.h: the same
 * results, bit for bit, except that a NaN input gives exp(-87) instead of
 * NaN.  The scalar loop does not vectorise: without -ffast-math GCC keeps
 * the clamps' branches. */
#ifndef FASTRBM_CATEGORICAL_H
#define FASTRBM_CATEGORICAL_H

#include <stddef.h>
#include <string.h>
#include "_kernels.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* The SSE2 path (x86-64 baseline; else the scalar loop). */
static inline void fr_cat_expf_sse2(float *x, int n)
{
    int c = 0;
#if defined(__SSE2__)
    const __m128 lo = _mm_set1_ps(-87.0f), hi = _mm_set1_ps(88.0f);
    const __m128 round = _mm_set1_ps(12582912.0f), one = _mm_set1_ps(1.0f);
    for (; c + 4 <= n; c += 4) {
        __m128 v = _mm_loadu_ps(x + c);
        v = _mm_max_ps(v, lo);
        v = _mm_min_ps(v, hi);
        __m128 fx = _mm_mul_ps(v, _mm_set1_ps(1.44269504088896341f));
        __m128 k = _mm_sub_ps(_mm_add_ps(fx, round), round);
        __m128 r = _mm_sub_ps(v, _mm_mul_ps(k, _mm_set1_ps(0.693359375f)));
        r = _mm_sub_ps(r, _mm_mul_ps(k, _mm_set1_ps(-2.12194440e-4f)));
        __m128 z = _mm_mul_ps(r, r);
        __m128 y = _mm_set1_ps(1.9875691500e-4f);
        y = _mm_add_ps(_mm_mul_ps(y, r), _mm_set1_ps(1.3981999507e-3f));
        y = _mm_add_ps(_mm_mul_ps(y, r), _mm_set1_ps(8.3334519073e-3f));
        y = _mm_add_ps(_mm_mul_ps(y, r), _mm_set1_ps(4.1665795894e-2f));
        y = _mm_add_ps(_mm_mul_ps(y, r), _mm_set1_ps(1.6666665459e-1f));
        y = _mm_add_ps(_mm_mul_ps(y, r), _mm_set1_ps(5.0000001201e-1f));
        y = _mm_add_ps(_mm_add_ps(_mm_mul_ps(y, z), r), one);
        __m128i bits = _mm_slli_epi32(
            _mm_add_epi32(_mm_cvttps_epi32(k), _mm_set1_epi32(127)), 23);
        _mm_storeu_ps(x + c, _mm_mul_ps(y, _mm_castsi128_ps(bits)));
    }
#endif
    for (; c < n; c++)
        x[c] = fr_expf(x[c]);
}

/* The same on 8 lanes where the CPU has AVX2 (chosen at run time; AVX2
 * without FMA, so nothing is contracted and the values are the same). */
#if FR_HAVE_AVX2_PATH
__attribute__((target("avx2")))
static void fr_cat_expf_avx2(float *x, int n)
{
    int c = 0;
    const __m256 lo = _mm256_set1_ps(-87.0f), hi = _mm256_set1_ps(88.0f);
    const __m256 round = _mm256_set1_ps(12582912.0f), one = _mm256_set1_ps(1.0f);
    for (; c + 8 <= n; c += 8) {
        __m256 v = _mm256_loadu_ps(x + c);
        v = _mm256_max_ps(v, lo);
        v = _mm256_min_ps(v, hi);
        __m256 fx = _mm256_mul_ps(v, _mm256_set1_ps(1.44269504088896341f));
        __m256 k = _mm256_sub_ps(_mm256_add_ps(fx, round), round);
        __m256 r = _mm256_sub_ps(v, _mm256_mul_ps(k, _mm256_set1_ps(0.693359375f)));
        r = _mm256_sub_ps(r, _mm256_mul_ps(k, _mm256_set1_ps(-2.12194440e-4f)));
        __m256 z = _mm256_mul_ps(r, r);
        __m256 y = _mm256_set1_ps(1.9875691500e-4f);
        y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(1.3981999507e-3f));
        y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(8.3334519073e-3f));
        y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(4.1665795894e-2f));
        y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(1.6666665459e-1f));
        y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(5.0000001201e-1f));
        y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(y, z), r), one);
        __m256i bits = _mm256_slli_epi32(
            _mm256_add_epi32(_mm256_cvttps_epi32(k), _mm256_set1_epi32(127)), 23);
        _mm256_storeu_ps(x + c, _mm256_mul_ps(y, _mm256_castsi256_ps(bits)));
    }
    fr_cat_expf_sse2(x + c, n - c);
}
#endif

/* Set once at module import (before any kernel runs): whether to use AVX2. */
static int fr_cat_use_avx2 = 0;

static void fr_cat_init(void)
{
#if FR_HAVE_AVX2_PATH
    __builtin_cpu_init();
    fr_cat_use_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
#endif
}

static inline void fr_cat_expf(float *x, int n)
{
#if FR_HAVE_AVX2_PATH
    if (fr_cat_use_avx2) {
        fr_cat_expf_avx2(x, n);
        return;
    }
#endif
    fr_cat_expf_sse2(x, n);
}

/* Tests: path 0 scalar, 1 SSE2, 2 AVX2 (-1 when this build or CPU lacks it). */
static int fr_cat_expf_path(float *x, int n, int path)
{
    if (path == 0) {
        for (int c = 0; c < n; c++) x[c] = fr_expf(x[c]);
        return 0;
    }
    if (path == 1) {
        fr_cat_expf_sse2(x, n);
        return 0;
    }
#if FR_HAVE_AVX2_PATH
    if (fr_cat_use_avx2) {
        fr_cat_expf_avx2(x, n);
        return 0;
    }
#endif
    return -1;
}

/* out[j] = sum_k base[idx[k] * ld + j] for j < H, the rows added in the
 * order of idx (k = 0, 1, ...) starting from 0: the hidden field of a coded
 * row (base = W^T, idx = its parameter columns) and the sums of a category's
 * hidden vectors (base = the statistics, idx = the rows with that category).
 * Blocks of 32 (float) or 16 (double) units keep their partial sums in
 * registers across the whole sum; every unit's sum is the same sequence of
 * additions as a plain loop, so the results are those of one. */
typedef float fr_v4f __attribute__((vector_size(16)));
typedef double fr_v2d __attribute__((vector_size(16)));

#define FR_DEFINE_SUM_ROWS(NAME, T, V, LANES)                                          \
static inline V NAME##_load(const T *p) { V v; memcpy(&v, p, sizeof v); return v; }    \
static inline void NAME(const T *base, ptrdiff_t ld, const int32_t *idx, int n, int H, \
                        T *out)                                                        \
{                                                                                      \
    int j0 = 0;                                                                        \
    for (; j0 + 8 * LANES <= H; j0 += 8 * LANES) {                                     \
        V a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0},        \
          a7 = {0};                                                                    \
        for (int k = 0; k < n; k++) {                                                  \
            const T *w = base + (ptrdiff_t)idx[k] * ld + j0;                           \
            a0 += NAME##_load(w);             a1 += NAME##_load(w + LANES);            \
            a2 += NAME##_load(w + 2 * LANES); a3 += NAME##_load(w + 3 * LANES);        \
            a4 += NAME##_load(w + 4 * LANES); a5 += NAME##_load(w + 5 * LANES);        \
            a6 += NAME##_load(w + 6 * LANES); a7 += NAME##_load(w + 7 * LANES);        \
        }                                                                              \
        memcpy(out + j0, &a0, sizeof a0);             memcpy(out + j0 + LANES, &a1, sizeof a1); \
        memcpy(out + j0 + 2 * LANES, &a2, sizeof a2); memcpy(out + j0 + 3 * LANES, &a3, sizeof a3); \
        memcpy(out + j0 + 4 * LANES, &a4, sizeof a4); memcpy(out + j0 + 5 * LANES, &a5, sizeof a5); \
        memcpy(out + j0 + 6 * LANES, &a6, sizeof a6); memcpy(out + j0 + 7 * LANES, &a7, sizeof a7); \
    }                                                                                  \
    for (; j0 + LANES <= H; j0 += LANES) {                                             \
        V a = {0};                                                                     \
        for (int k = 0; k < n; k++)                                                    \
            a += NAME##_load(base + (ptrdiff_t)idx[k] * ld + j0);                      \
        memcpy(out + j0, &a, sizeof a);                                                \
    }                                                                                  \
    for (; j0 < H; j0++) {                                                             \
        T a = 0;                                                                       \
        for (int k = 0; k < n; k++) a += base[(ptrdiff_t)idx[k] * ld + j0];            \
        out[j0] = a;                                                                   \
    }                                                                                  \
}

FR_DEFINE_SUM_ROWS(fr_cat_sum_rows_f32, float, fr_v4f, 4)
FR_DEFINE_SUM_ROWS(fr_cat_sum_rows_f64, double, fr_v2d, 2)


/* Per site of q values: x -= max(x) (the softmax's shift).  The maximum is
 * exact whatever the order it is taken in, so the SSE2 lanes give the
 * plain loop's value. */
static inline void fr_cat_shift_f32(float *x, int n_sites, int q)
{
    for (int s = 0; s < n_sites; s++) {
        float *xs = x + (ptrdiff_t)s * q;
        float m = xs[0];
        int a = 0;
#if defined(__SSE2__)
        if (q >= 4) {
            __m128 mv = _mm_loadu_ps(xs);
            for (a = 4; a + 4 <= q; a += 4) mv = _mm_max_ps(mv, _mm_loadu_ps(xs + a));
            float lanes[4];
            _mm_storeu_ps(lanes, mv);
            for (int l = 0; l < 4; l++) m = lanes[l] > m ? lanes[l] : m;
        }
#endif
        for (; a < q; a++) m = xs[a] > m ? xs[a] : m;
        for (a = 0; a < q; a++) xs[a] = xs[a] - m;
    }
}

static inline void fr_cat_shift_f64(double *x, int n_sites, int q)
{
    for (int s = 0; s < n_sites; s++) {
        double *xs = x + (ptrdiff_t)s * q;
        double m = xs[0];
        int a = 0;
#if defined(__SSE2__)
        if (q >= 2) {
            __m128d mv = _mm_loadu_pd(xs);
            for (a = 2; a + 2 <= q; a += 2) mv = _mm_max_pd(mv, _mm_loadu_pd(xs + a));
            double lanes[2];
            _mm_storeu_pd(lanes, mv);
            for (int l = 0; l < 2; l++) m = lanes[l] > m ? lanes[l] : m;
        }
#endif
        for (; a < q; a++) m = xs[a] > m ? xs[a] : m;
        for (a = 0; a < q; a++) xs[a] = xs[a] - m;
    }
}

/* The number of the q running sums C_0 <= C_1 <= ... at or below target:
 * the inverse-CDF draw's category before the q - 1 cap.  Counting is exact
 * in any order, so the SSE2 lanes give the plain loop's count. */
/* The count of c[a] <= target over a < q (the draw's category: the
 * running sums do not decrease).  The compare masks (-1 per true lane) are
 * summed as integers: no popcount, which the x86-64 baseline lacks (GCC
 * calls a library function for it). */
static inline int fr_cat_count_f32(const float *c, int q, float target)
{
    int n = 0, a = 0;
#if defined(__SSE2__)
    const __m128 t = _mm_set1_ps(target);
    __m128i acc = _mm_setzero_si128();
    for (; a + 4 <= q; a += 4)
        acc = _mm_sub_epi32(acc, _mm_castps_si128(_mm_cmple_ps(_mm_loadu_ps(c + a), t)));
    int lanes[4];
    _mm_storeu_si128((__m128i *)lanes, acc);
    n = lanes[0] + lanes[1] + lanes[2] + lanes[3];
#endif
    for (; a < q; a++) n += c[a] <= target;
    return n;
}

static inline int fr_cat_count_f64(const double *c, int q, double target)
{
    int n = 0, a = 0;
#if defined(__SSE2__)
    const __m128d t = _mm_set1_pd(target);
    __m128i acc = _mm_setzero_si128();
    for (; a + 2 <= q; a += 2)
        acc = _mm_sub_epi64(acc, _mm_castpd_si128(_mm_cmple_pd(_mm_loadu_pd(c + a), t)));
    long long lanes[2];
    _mm_storeu_si128((__m128i *)lanes, acc);
    n = (int)(lanes[0] + lanes[1]);
#endif
    for (; a < q; a++) n += c[a] <= target;
    return n;
}

/* The categories of n_sites sites from their exponentials e (n_sites q
 * values, site-major; overwritten by the running sums) and one uniform per
 * site: with running sums C_a = ((e_0 + e_1) + ...) + e_a in float32,
 * code = min(q - 1, count of C_a <= u C_{q-1}) (docs/guide/
 * reproducibility.md, "Categorical draws"). */
static inline void fr_cat_pick_scalar_f32(float *e, int n_sites, int q, const float *u,
                                          int32_t *codes)
{
    for (int s = 0; s < n_sites; s++) {
        float *xs = e + (ptrdiff_t)s * q;
        float total = 0.0f;
        for (int a = 0; a < q; a++) {
            total = total + xs[a];
            xs[a] = total;
        }
        int code = fr_cat_count_f32(xs, q, u[s] * total);
        codes[s] = code > q - 1 ? q - 1 : code;
    }
}

/* The whole float32 draw of n_sites sites, one pass per step over all the
 * sites' values: x = scale x + bias (the product only where scale != 1,
 * bias may be NULL: a tempered replica's beta (y W) + b_beta), x -= max per
 * site, exp, then the pick.  x is overwritten. */
static inline void fr_cat_draw_passes_f32(float *x, const float *bias, float scale,
                                          int n_sites, int q, const float *u, int32_t *codes,
                                          int vector_exp)
{
    ptrdiff_t n = (ptrdiff_t)n_sites * q;
    if (scale != 1.0f)
        for (ptrdiff_t c = 0; c < n; c++) x[c] = scale * x[c];
    if (bias != NULL)
        for (ptrdiff_t c = 0; c < n; c++) x[c] = x[c] + bias[c];
    fr_cat_shift_f32(x, n_sites, q);
    if (vector_exp)
        fr_cat_expf(x, (int)n);
    else
        for (ptrdiff_t c = 0; c < n; c++) x[c] = fr_expf(x[c]);
    fr_cat_pick_scalar_f32(x, n_sites, q, u, codes);
}

#if FR_HAVE_AVX2_PATH
/* The same draw fused, 8 sites per lane set (one site per lane): 8 serial
 * chains of q dependent additions become one.  The
 * biased logits gathered across sites at stride q into sums[a * 8 + lane],
 * their maximum, then per category exp(x - max) (fr_expf's operations) and
 * the running sum, then the count.  Every lane does the one-site
 * operations in their order: the same codes.  Sites past the last full 8
 * take the passes.  x is not written. */
__attribute__((target("avx2")))
static void fr_cat_draw_avx2_f32(float *x, const float *bias, float scale, int n_sites,
                                 int q, const float *u, int32_t *codes, float *sums)
{
    const int scaled = scale != 1.0f;
    const __m256 scale8 = _mm256_set1_ps(scale);
    const __m256i stride = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                              _mm256_set1_epi32(q));
    const __m256i last = _mm256_set1_epi32(q - 1);
    const __m256 lo = _mm256_set1_ps(-87.0f), hi = _mm256_set1_ps(88.0f);
    int s = 0;
    for (; s + 8 <= n_sites; s += 8) {
        const float *xs = x + (ptrdiff_t)s * q;
        const float *bs = bias != NULL ? bias + (ptrdiff_t)s * q : NULL;
        __m256 v = _mm256_i32gather_ps(xs, stride, 4);
        if (scaled) v = _mm256_mul_ps(scale8, v);
        if (bs != NULL) v = _mm256_add_ps(v, _mm256_i32gather_ps(bs, stride, 4));
        _mm256_storeu_ps(sums, v);
        __m256 top = v;
        for (int a = 1; a < q; a++) {
            v = _mm256_i32gather_ps(xs + a, stride, 4);
            if (scaled) v = _mm256_mul_ps(scale8, v);
            if (bs != NULL) v = _mm256_add_ps(v, _mm256_i32gather_ps(bs + a, stride, 4));
            _mm256_storeu_ps(sums + 8 * a, v);
            /* the maximum is exact in any order (as the passes' shift) */
            top = _mm256_max_ps(v, top);
        }
        __m256 total = _mm256_setzero_ps();
        for (int a = 0; a < q; a++) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(sums + 8 * a), top);
            d = _mm256_min_ps(_mm256_max_ps(d, lo), hi);
            total = _mm256_add_ps(total, fr_exp_clamped_avx2(d));
            _mm256_storeu_ps(sums + 8 * a, total);
        }
        const __m256 target = _mm256_mul_ps(_mm256_loadu_ps(u + s), total);
        __m256i count = _mm256_setzero_si256();
        for (int a = 0; a < q; a++)
            count = _mm256_sub_epi32(count, _mm256_castps_si256(
                _mm256_cmp_ps(_mm256_loadu_ps(sums + 8 * a), target, _CMP_LE_OQ)));
        _mm256_storeu_si256((__m256i *)(codes + s), _mm256_min_epi32(count, last));
    }
    if (s < n_sites)
        fr_cat_draw_passes_f32(x + (ptrdiff_t)s * q, bias != NULL ? bias + (ptrdiff_t)s * q : NULL,
                               scale, n_sites - s, q, u + s, codes + s, 1);
}
#endif

/* The float32 draw: codes[s] of site s from its logits scale x (+ bias) and
 * uniform u[s]; sums: scratch of q * 8 floats (NULL with path 1).  path:
 * -1 as dispatched, 0 scalar passes (tests), 1 passes with the vector exp
 * and the one-site pick (any q), 2 fused AVX2 (tests); returns -1 where
 * the path is missing. */
static inline int fr_cat_draw_f32(float *x, const float *bias, float scale, int n_sites,
                                  int q, const float *u, int32_t *codes, float *sums, int path)
{
#if FR_HAVE_AVX2_PATH
    if ((path == -1 || path == 2) && fr_cat_use_avx2) {
        fr_cat_draw_avx2_f32(x, bias, scale, n_sites, q, u, codes, sums);
        return 0;
    }
#endif
    if (path == 2) return -1;
    fr_cat_draw_passes_f32(x, bias, scale, n_sites, q, u, codes, path != 0);
    return 0;
}

#endif
