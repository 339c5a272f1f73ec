/* The exp pass of the categorical softmax (_categorical.pyx).
 *
 * x[c] = fr_expf(x[c]) over a row of logits, four lanes at a time with SSE2
 * (part of every x86-64 CPU, so no run-time dispatch), operation for
 * operation as the scalar fr_expf of _kernels.h: the same results, bit for
 * bit, except that a NaN input gives exp(-87) instead of NaN.  The scalar
 * loop does not vectorise: without -ffast-math GCC keeps the clamps'
 * branches. */
#ifndef FASTRBM_CATEGORICAL_H
#define FASTRBM_CATEGORICAL_H

#include "_kernels.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static inline void fr_cat_expf(float *x, int n)
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

#endif
