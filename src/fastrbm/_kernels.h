/*
 * Portable C helpers for the fastrbm CPU engine (_gibbs.pyx).
 *
 * 1. Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as
 *    easy as 1, 2, 3", SC 2011), the counter-based generator of Random123,
 *    cuRAND and PyTorch's CUDA generator.
 * 2. The fused "sigmoid + Bernoulli draw" tile kernel used for every Gibbs
 *    half-step, and the Gaussian visible draw (Box-Muller) of
 *    GaussianBernoulliRBM.
 *
 * Counter layout (the same in _reference.py and every other engine):
 *   key     = (k0, k1)         two 32-bit words from the model's SeedSequence
 *   counter = (c0, c1, c2, c3)
 *     c0 = column_index / 4    one Philox call gives the uniforms of 4
 *                               consecutive columns (word j % 4 is column j)
 *     c1 = row                 row within the minibatch / the call's input
 *     c2 = step                minibatch update index (training) or call index
 *     c3 = (stream << 24) | phase
 *                               stream: 0 training, 1 gibbs/sample, 2 monitor,
 *                               3 AIS (c2 = temperature index, c1 = chain,
 *                               phase 0 hidden draw, 1 visible draw; the
 *                               base-model draw is step 0, phase 1)
 *                               phase: 0 hidden draw from the data, 2s-1 the
 *                               visible draw of Gibbs step s, 2s its hidden draw
 * Field widths bound every call (checked before any draw, ValueError, by
 * _gibbs.check_counters): phase < 2^24, so at most 2^23 - 1 Gibbs steps per
 * call or update (training uses phases up to 2k); step < 2^32 (updates of a
 * model, gibbs/sample calls, AIS temperatures); row < 2^32.  A wrapped field
 * would silently reuse earlier draws.
 * A uniform is u = (x >> 8) * 2^-24 in float32 (24 bits) and u = x * 2^-32 in
 * float64 (32 bits); a unit is on when u < p.  Every uniform therefore has a
 * fixed address: results do not depend on thread count or chunking.
 *
 * Gaussian visible units (GaussianBernoulliRBM) use the same addresses: the
 * visible draw v = mean + z takes z ~ N(0, 1) by Box-Muller from the uniforms
 * of the column pair (2m, 2m+1) of the same row/step/phase:
 *     u1 = 1 - u(2m)  (in (0, 1], so log u1 is finite),  u2 = u(2m+1)
 *     z(2m)   = sqrt(-2 ln u1) cos(2 pi u2)
 *     z(2m+1) = sqrt(-2 ln u1) sin(2 pi u2)
 * An odd last column uses the cos draw (its pair's second uniform is the word
 * of column D, which the Philox block computes anyway).  u1 and u2 are taken
 * in the model's precision as above; the transcendental part is evaluated in
 * float64 and z rounded to the model's precision before the addition.
 * Visible units with per-feature standard deviation s (GaussianBernoulliRBM
 * with learned or assigned sigma_) use the same z at the same addresses: the
 * kernels draw u = v / s = (W^T h + b / s) + z and return v = s * u.
 *
 * The tile kernels have an AVX2 path and a scalar path, chosen at import by
 * CPU features: wheels must run on CPUs without AVX2, and -march=native is
 * never used.  Both paths give bit-identical results.
 */
#ifndef FASTRBM_KERNELS_H
#define FASTRBM_KERNELS_H

#include <stdint.h>
#include <string.h>
#include <math.h>

#ifdef _OPENMP
#include <omp.h>
static int fr_openmp_enabled(void) { return 1; }
static int fr_max_threads(void) { return omp_get_max_threads(); }
#else
static int fr_openmp_enabled(void) { return 0; }
static int fr_max_threads(void) { return 1; }
#endif

/* Run-time dispatch: an AVX2 path (intrinsics under a target attribute, so the
 * rest of the build stays at the baseline ISA) and a portable scalar path.
 * Both paths compute bit-identical results: no FMA contraction is possible in
 * either (AVX2 without FMA, and x86-64 baseline has no FMA). */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && \
    !defined(FASTRBM_NO_SIMD)
#define FR_HAVE_AVX2_PATH 1
#include <immintrin.h>
#else
#define FR_HAVE_AVX2_PATH 0
#endif

static int fr_use_avx2 = 0;

static void fr_init_dispatch(void)
{
#if FR_HAVE_AVX2_PATH
    __builtin_cpu_init();
    fr_use_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
#endif
}

static const char *fr_simd_dispatch(void) { return fr_use_avx2 ? "avx2" : "baseline (scalar)"; }

#define FR_PHILOX_M0 0xD2511F53u
#define FR_PHILOX_M1 0xCD9E8D57u
#define FR_PHILOX_W0 0x9E3779B9u
#define FR_PHILOX_W1 0xBB67AE85u

/* One Philox4x32-10 block, scalar.  Used by tests (known-answer vectors). */
static inline void fr_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                                    uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)FR_PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)FR_PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += FR_PHILOX_W0;
        k1 += FR_PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* The tile is 64 columns = 16 Philox blocks. */
#define FR_TILE 64
#define FR_TILE_BLOCKS (FR_TILE / 4)

static inline void fr_philox_tile_scalar(uint32_t out[FR_TILE], uint32_t block0,
                                  uint32_t c1, uint32_t c2, uint32_t c3,
                                  uint32_t key0, uint32_t key1)
{
    uint32_t x0[FR_TILE_BLOCKS], x1[FR_TILE_BLOCKS], x2[FR_TILE_BLOCKS], x3[FR_TILE_BLOCKS];
    for (int b = 0; b < FR_TILE_BLOCKS; b++) {
        x0[b] = block0 + (uint32_t)b; x1[b] = c1; x2[b] = c2; x3[b] = c3;
    }
    uint32_t k0 = key0, k1 = key1;
    for (int r = 0; r < 10; r++) {
        for (int b = 0; b < FR_TILE_BLOCKS; b++) {
            uint64_t p0 = (uint64_t)FR_PHILOX_M0 * x0[b];
            uint64_t p1 = (uint64_t)FR_PHILOX_M1 * x2[b];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ x1[b] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ x3[b] ^ k1;
            x1[b] = (uint32_t)p1;
            x3[b] = (uint32_t)p0;
            x0[b] = n0;
            x2[b] = n2;
        }
        k0 += FR_PHILOX_W0;
        k1 += FR_PHILOX_W1;
    }
    for (int b = 0; b < FR_TILE_BLOCKS; b++) {
        out[4 * b + 0] = x0[b]; out[4 * b + 1] = x1[b];
        out[4 * b + 2] = x2[b]; out[4 * b + 3] = x3[b];
    }
}

/* exp for float32 without branches (Cephes-style: Cody-Waite reduction and a
 * degree-6 polynomial, about 2 ulp), so the sigmoid loop vectorises without
 * -ffast-math.  The input is clamped so 2^n stays a normal number. */
static inline float fr_expf(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float fx = x * 1.44269504088896341f;
    /* round to nearest via the 1.5 * 2^23 trick; |fx| < 2^22 here */
    float n = (fx + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float z = r * r;
    float y = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
                 + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) * z
              + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

static inline float fr_sigmoidf(float a) { return 1.0f / (1.0f + fr_expf(-a)); }
static inline double fr_sigmoid(double a) { return 1.0 / (1.0 + exp(-a)); }

#if FR_HAVE_AVX2_PATH
/* 8 lanes of (hi, lo) = 32x32->64-bit products x * m. */
__attribute__((target("avx2")))
static inline void fr_mulhilo_avx2(__m256i x, __m256i m, __m256i *hi, __m256i *lo)
{
    __m256i even = _mm256_mul_epu32(x, m);
    __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), m);
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

/* The same 16 blocks as fr_philox_tile_scalar, 8 blocks per vector. */
__attribute__((target("avx2")))
static void fr_philox_tile_avx2(uint32_t out[FR_TILE], uint32_t block0, uint32_t c1,
                                uint32_t c2, uint32_t c3, uint32_t key0, uint32_t key1)
{
    const __m256i m0 = _mm256_set1_epi32((int)FR_PHILOX_M0);
    const __m256i m1 = _mm256_set1_epi32((int)FR_PHILOX_M1);
    for (int half = 0; half < 2; half++) {
        __m256i x0 = _mm256_add_epi32(_mm256_set1_epi32((int)(block0 + 8u * half)),
                                      _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256i x1 = _mm256_set1_epi32((int)c1);
        __m256i x2 = _mm256_set1_epi32((int)c2);
        __m256i x3 = _mm256_set1_epi32((int)c3);
        uint32_t k0 = key0, k1 = key1;
        for (int r = 0; r < 10; r++) {
            __m256i hi0, lo0, hi1, lo1;
            fr_mulhilo_avx2(x0, m0, &hi0, &lo0);
            fr_mulhilo_avx2(x2, m1, &hi1, &lo1);
            x0 = _mm256_xor_si256(_mm256_xor_si256(hi1, x1), _mm256_set1_epi32((int)k0));
            x2 = _mm256_xor_si256(_mm256_xor_si256(hi0, x3), _mm256_set1_epi32((int)k1));
            x1 = lo1;
            x3 = lo0;
            k0 += FR_PHILOX_W0;
            k1 += FR_PHILOX_W1;
        }
        /* transpose 4 words x 8 blocks into block-major order out[4b + w] */
        __m256i t0 = _mm256_unpacklo_epi32(x0, x1), t1 = _mm256_unpackhi_epi32(x0, x1);
        __m256i t2 = _mm256_unpacklo_epi32(x2, x3), t3 = _mm256_unpackhi_epi32(x2, x3);
        __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
        __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
        uint32_t *o = out + 32 * half;
        _mm256_storeu_si256((__m256i *)(o + 0), _mm256_permute2x128_si256(u0, u1, 0x20));
        _mm256_storeu_si256((__m256i *)(o + 8), _mm256_permute2x128_si256(u2, u3, 0x20));
        _mm256_storeu_si256((__m256i *)(o + 16), _mm256_permute2x128_si256(u0, u1, 0x31));
        _mm256_storeu_si256((__m256i *)(o + 24), _mm256_permute2x128_si256(u2, u3, 0x31));
    }
}

/* fr_expf on 8 lanes, operation for operation, of x already clamped to
 * [-87, 88] (the callers clamp as fr_expf does). */
__attribute__((target("avx2")))
static inline __m256 fr_exp_clamped_avx2(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 fx = _mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f));
    __m256 n = _mm256_sub_ps(_mm256_add_ps(fx, _mm256_set1_ps(12582912.0f)),
                             _mm256_set1_ps(12582912.0f));
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(0.693359375f)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(-2.12194440e-4f)));
    __m256 z = _mm256_mul_ps(r, r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_add_ps(_mm256_mul_ps(y, r), _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(y, z), r), one);
    __m256i bits = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
}

/* fr_sigmoidf on 8 lanes, operation for operation. */
__attribute__((target("avx2")))
static inline __m256 fr_sigmoid_avx2(__m256 a)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 x = _mm256_sub_ps(_mm256_setzero_ps(), a);
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    x = _mm256_min_ps(x, _mm256_set1_ps(88.0f));
    __m256 e = fr_exp_clamped_avx2(x);
    return _mm256_div_ps(one, _mm256_add_ps(one, e));
}
#endif

static inline void fr_philox_tile(uint32_t out[FR_TILE], uint32_t block0, uint32_t c1,
                                  uint32_t c2, uint32_t c3, uint32_t key0, uint32_t key1)
{
#if FR_HAVE_AVX2_PATH
    if (fr_use_avx2) {
        fr_philox_tile_avx2(out, block0, c1, c2, c3, key0, key1);
        return;
    }
#endif
    fr_philox_tile_scalar(out, block0, c1, c2, c3, key0, key1);
}

/*
 * Fused sigmoid + Bernoulli draw over n consecutive columns of one row,
 * starting at column col0 (a multiple of 4):
 *     p         = sigmoid(act[j] + bias[j])
 *     act[j]    = p * scale                       (stacked gradient statistics)
 *     sample[j] = (u(row, col0 + j) < p)          when sample != NULL
 * sample may alias act (the draw then replaces the scaled probability).
 */
#define FR_UNIFORM_F32(x) ((float)((x) >> 8) * 5.9604644775390625e-08f)
#define FR_UNIFORM_F64(x) ((double)(x) * 2.3283064365386963e-10)

#define FR_DEFINE_BERNOULLI_SCALAR(NAME, T, SIGMOID, UNIFORM)                       \
static void NAME(T *act, const T *bias, T scale, T *sample, int n, uint32_t col0,   \
                 uint32_t row, uint32_t step, uint32_t c3, uint32_t key0,           \
                 uint32_t key1)                                                     \
{                                                                                   \
    T p[FR_TILE];                                                                   \
    uint32_t u[FR_TILE];                                                            \
    for (int t0 = 0; t0 < n; t0 += FR_TILE) {                                       \
        int m = n - t0 < FR_TILE ? n - t0 : FR_TILE;                                \
        T *a = act + t0;                                                            \
        const T *bb = bias + t0;                                                    \
        for (int j = 0; j < m; j++) p[j] = SIGMOID(a[j] + bb[j]);                   \
        for (int j = 0; j < m; j++) a[j] = p[j] * scale;                            \
        if (sample) {                                                               \
            T *s = sample + t0;                                                     \
            fr_philox_tile(u, (col0 + (uint32_t)t0) >> 2, row, step, c3, key0, key1); \
            for (int j = 0; j < m; j++) s[j] = (UNIFORM(u[j]) < p[j]) ? (T)1 : (T)0; \
        }                                                                           \
    }                                                                               \
}

FR_DEFINE_BERNOULLI_SCALAR(fr_bernoulli_f32_scalar, float, fr_sigmoidf, FR_UNIFORM_F32)
FR_DEFINE_BERNOULLI_SCALAR(fr_bernoulli_f64, double, fr_sigmoid, FR_UNIFORM_F64)

#if FR_HAVE_AVX2_PATH
__attribute__((target("avx2")))
static void fr_bernoulli_f32_avx2(float *act, const float *bias, float scale, float *sample,
                                  int n, uint32_t col0, uint32_t row, uint32_t step,
                                  uint32_t c3, uint32_t key0, uint32_t key1)
{
    uint32_t u[FR_TILE];
    const __m256 vscale = _mm256_set1_ps(scale);
    const __m256 ulp24 = _mm256_set1_ps(5.9604644775390625e-08f);
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int t0 = 0; t0 < n; t0 += FR_TILE) {
        int m = n - t0 < FR_TILE ? n - t0 : FR_TILE;
        float *a = act + t0;
        const float *bb = bias + t0;
        float *s = sample ? sample + t0 : NULL;
        if (s) fr_philox_tile_avx2(u, (col0 + (uint32_t)t0) >> 2, row, step, c3, key0, key1);
        int j = 0;
        for (; j + 8 <= m; j += 8) {
            __m256 p = fr_sigmoid_avx2(_mm256_add_ps(_mm256_loadu_ps(a + j),
                                                     _mm256_loadu_ps(bb + j)));
            _mm256_storeu_ps(a + j, _mm256_mul_ps(p, vscale));
            if (s) {
                __m256i w = _mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)(u + j)), 8);
                __m256 uf = _mm256_mul_ps(_mm256_cvtepi32_ps(w), ulp24);
                _mm256_storeu_ps(s + j, _mm256_and_ps(_mm256_cmp_ps(uf, p, _CMP_LT_OQ), one));
            }
        }
        for (; j < m; j++) {
            float p = fr_sigmoidf(a[j] + bb[j]);
            a[j] = p * scale;
            if (s) s[j] = (FR_UNIFORM_F32(u[j]) < p) ? 1.0f : 0.0f;
        }
    }
}
#endif

static void fr_bernoulli_f32(float *act, const float *bias, float scale, float *sample,
                             int n, uint32_t col0, uint32_t row, uint32_t step,
                             uint32_t c3, uint32_t key0, uint32_t key1)
{
#if FR_HAVE_AVX2_PATH
    if (fr_use_avx2) {
        fr_bernoulli_f32_avx2(act, bias, scale, sample, n, col0, row, step, c3, key0, key1);
        return;
    }
#endif
    fr_bernoulli_f32_scalar(act, bias, scale, sample, n, col0, row, step, c3, key0, key1);
}

/*
 * Gaussian visible draw over n consecutive columns of one row starting at
 * column col0 (even; training blocks start at multiples of 4, so column pairs
 * never straddle two calls):  act[j] = (act[j] + bias[j]) + z(row, col0 + j),
 * z from Box-Muller on column pairs (counter layout above).  Scalar only: the
 * cost is in log/sqrt/sincos, which a portable SIMD path would not beat by
 * much, and this keeps one definition.
 */
#define FR_TWO_PI 6.283185307179586476925286766559

#define FR_DEFINE_GAUSSIAN(NAME, T, UNIFORM)                                        \
static void NAME(T *act, const T *bias, int n, uint32_t col0, uint32_t row,         \
                 uint32_t step, uint32_t c3, uint32_t key0, uint32_t key1)           \
{                                                                                   \
    uint32_t u[FR_TILE];                                                            \
    for (int t0 = 0; t0 < n; t0 += FR_TILE) {                                       \
        int m = n - t0 < FR_TILE ? n - t0 : FR_TILE;                                \
        T *a = act + t0;                                                            \
        const T *bb = bias + t0;                                                    \
        fr_philox_tile(u, (col0 + (uint32_t)t0) >> 2, row, step, c3, key0, key1);   \
        for (int j = 0; j < m; j += 2) {                                            \
            T u1 = (T)1 - UNIFORM(u[j]);                                            \
            T u2 = UNIFORM(u[j + 1]);                                               \
            double r = sqrt(-2.0 * log((double)u1));                                \
            double th = FR_TWO_PI * (double)u2;                                     \
            a[j] = (a[j] + bb[j]) + (T)(r * cos(th));                               \
            if (j + 1 < m) a[j + 1] = (a[j + 1] + bb[j + 1]) + (T)(r * sin(th));     \
        }                                                                           \
    }                                                                               \
}

FR_DEFINE_GAUSSIAN(fr_gaussian_f32, float, FR_UNIFORM_F32)
FR_DEFINE_GAUSSIAN(fr_gaussian_f64, double, FR_UNIFORM_F64)

/* Tests force the scalar path to check that both paths agree bit for bit. */
static int fr_set_simd(int enable)
{
    int previous = fr_use_avx2;
    fr_use_avx2 = 0;
    if (enable) fr_init_dispatch();
    return previous;
}

#endif /* FASTRBM_KERNELS_H */
