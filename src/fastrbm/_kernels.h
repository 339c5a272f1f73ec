/*
 * Portable C helpers for the fastrbm CPU engine (_gibbs.pyx).
 *
 * 1. Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as
 *    easy as 1, 2, 3", SC 2011), the counter-based generator of Random123,
 *    cuRAND and PyTorch's CUDA generator.
 * 2. The fused "sigmoid + Bernoulli draw" tile kernel used for every Gibbs
 *    half-step.
 *
 * Counter layout (the same in _reference.py and every other engine):
 *   key     = (k0, k1)         two 32-bit words from the model's SeedSequence
 *   counter = (c0, c1, c2, c3)
 *     c0 = column_index / 4    one Philox call gives the uniforms of 4
 *                               consecutive columns (word j % 4 is column j)
 *     c1 = row                 row within the minibatch / the call's input
 *     c2 = step                minibatch update index (training) or call index
 *     c3 = (stream << 24) | phase
 *                               stream: 0 training, 1 gibbs/sample, 2 monitor
 *                               phase: 0 hidden draw from the data, 2s-1 the
 *                               visible draw of Gibbs step s, 2s its hidden draw
 * A uniform is u = (x >> 8) * 2^-24 in float32 (24 bits) and u = x * 2^-32 in
 * float64 (32 bits); a unit is on when u < p.  Every uniform therefore has a
 * fixed address: results do not depend on thread count or chunking.
 *
 * The tile kernels are compiled for AVX2 and for the baseline ISA and chosen
 * at load time (function multi-versioning) where the toolchain supports it:
 * wheels must run on CPUs without AVX2, and -march=native is never used.
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

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(FASTRBM_NO_MULTIVERSION) && \
    (!defined(__clang__) || (__clang_major__ >= 14))
#define FR_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#define FR_MULTIVERSION_NAME "avx2/baseline (runtime dispatch)"
#else
#define FR_MULTIVERSION
#define FR_MULTIVERSION_NAME "baseline"
#endif

static const char *fr_simd_dispatch(void) { return FR_MULTIVERSION_NAME; }

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

/* The tile is 64 columns = 16 Philox blocks.  The block loop has a fixed trip
 * count and structure-of-arrays state so the compiler vectorises it
 * (32x32->64 multiplies map to pmuludq). */
#define FR_TILE 64
#define FR_TILE_BLOCKS (FR_TILE / 4)

static inline void fr_philox_tile(uint32_t out[FR_TILE], uint32_t block0,
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

/*
 * Fused sigmoid + Bernoulli draw over n consecutive columns of one row,
 * starting at column col0 (a multiple of 4):
 *     p        = sigmoid(act[j] + bias[j])
 *     act[j]   = p * scale                       (stacked gradient statistics)
 *     sample[j] = (u(row, col0 + j) < p)          when sample != NULL
 * sample may alias act (the draw then replaces the probability).
 */
#define FR_DEFINE_BERNOULLI(NAME, T, SIGMOID, UNIFORM)                               \
FR_MULTIVERSION                                                                     \
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

#define FR_UNIFORM_F32(x) ((float)((x) >> 8) * 5.9604644775390625e-08f)
#define FR_UNIFORM_F64(x) ((double)(x) * 2.3283064365386963e-10)

FR_DEFINE_BERNOULLI(fr_bernoulli_f32, float, fr_sigmoidf, FR_UNIFORM_F32)
FR_DEFINE_BERNOULLI(fr_bernoulli_f64, double, fr_sigmoid, FR_UNIFORM_F64)

#endif /* FASTRBM_KERNELS_H */
