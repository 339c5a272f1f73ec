# cython: language_level=3
"""The fused Philox samplers for the CPU kernels (see _sampling.pyx).

The draws themselves (``sample_bernoulli_*``, ``sample_gaussian_*``) are
compiled once, in _sampling, and reached through these inline wrappers: the
SIMD dispatch flag of _kernels.h is a static of each extension that includes
it, and one copy means ``set_simd`` switches every kernel."""
from libc.stdint cimport uint32_t
from cython cimport floating

cdef extern from "_kernels.h" nogil:
    void fr_philox4x32_10(const uint32_t *ctr, const uint32_t *key, uint32_t *out)
    void fr_bernoulli_f32(float *act, const float *bias, float scale, float *sample,
                          int n, uint32_t col0, uint32_t row, uint32_t step,
                          uint32_t c3, uint32_t key0, uint32_t key1)
    void fr_bernoulli_f64(double *act, const double *bias, double scale, double *sample,
                          int n, uint32_t col0, uint32_t row, uint32_t step,
                          uint32_t c3, uint32_t key0, uint32_t key1)
    void fr_gaussian_f32(float *act, const float *bias, int n, uint32_t col0, uint32_t row,
                         uint32_t step, uint32_t c3, uint32_t key0, uint32_t key1)
    void fr_gaussian_f64(double *act, const double *bias, int n, uint32_t col0, uint32_t row,
                         uint32_t step, uint32_t c3, uint32_t key0, uint32_t key1)
    float fr_sigmoidf(float a)
    double fr_sigmoid(double a)


cdef void sample_bernoulli_f32(float *act, const float *bias, float scale, float *sample, int n,
                               uint32_t col0, uint32_t row, uint32_t step, uint32_t c3,
                               uint32_t key0, uint32_t key1) noexcept nogil
cdef void sample_bernoulli_f64(double *act, const double *bias, double scale, double *sample,
                               int n, uint32_t col0, uint32_t row, uint32_t step, uint32_t c3,
                               uint32_t key0, uint32_t key1) noexcept nogil
cdef void sample_gaussian_f32(float *act, const float *bias, int n, uint32_t col0, uint32_t row,
                              uint32_t step, uint32_t c3, uint32_t key0,
                              uint32_t key1) noexcept nogil
cdef void sample_gaussian_f64(double *act, const double *bias, int n, uint32_t col0,
                              uint32_t row, uint32_t step, uint32_t c3, uint32_t key0,
                              uint32_t key1) noexcept nogil


cdef inline void bernoulli(floating *act, const floating *bias, floating scale,
                           floating *sample, int n, Py_ssize_t col0, Py_ssize_t row,
                           uint32_t step, uint32_t c3, const uint32_t *key) noexcept nogil:
    if floating is float:
        sample_bernoulli_f32(act, bias, scale, sample, n, <uint32_t>col0, <uint32_t>row,
                             step, c3, key[0], key[1])
    else:
        sample_bernoulli_f64(act, bias, scale, sample, n, <uint32_t>col0, <uint32_t>row,
                             step, c3, key[0], key[1])


cdef inline void gaussian(floating *act, const floating *bias, int n, Py_ssize_t col0,
                          Py_ssize_t row, uint32_t step, uint32_t c3,
                          const uint32_t *key) noexcept nogil:
    """Gaussian visible draw in place: act = act + bias + z (Box-Muller, _kernels.h)."""
    if floating is float:
        sample_gaussian_f32(act, bias, n, <uint32_t>col0, <uint32_t>row, step, c3, key[0],
                            key[1])
    else:
        sample_gaussian_f64(act, bias, n, <uint32_t>col0, <uint32_t>row, step, c3, key[0],
                            key[1])


cdef inline void visible_draw(bint gauss, floating *act, const floating *bias, int n,
                              Py_ssize_t col0, Py_ssize_t row, uint32_t step, uint32_t c3,
                              const uint32_t *key) noexcept nogil:
    """The visible half-step's draw for either unit type, in place."""
    if gauss:
        gaussian(act, bias, n, col0, row, step, c3, key)
    else:
        bernoulli(act, bias, 1, act, n, col0, row, step, c3, key)


cdef inline uint32_t counter_word3(uint32_t stream, uint32_t phase) noexcept nogil:
    return (stream << 24) | (phase & 0xFFFFFF)
