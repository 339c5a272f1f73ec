# cython: language_level=3, cdivision=True
# cython: initializedcheck=False, nonecheck=False, embedsignature=True
"""Philox4x32-10 draws for the CPU kernels: the counter layout and its
checks, the fused samplers, and direct access to them (tests, other engines).

A draw's counter is (column block, row, step, stream << 24 | phase)
(_kernels.h; docs/design.md, "Random numbers").
"""
import numpy as np
from libc.stdint cimport uint32_t
from cython cimport floating

cdef extern from "_kernels.h" nogil:
    const char *fr_simd_dispatch()
    void fr_init_dispatch()
    int fr_set_simd(int enable)

from fastrbm cimport _random as streams

fr_init_dispatch()


cdef void sample_bernoulli_f32(float *act, const float *bias, float scale, float *sample, int n,
                               uint32_t col0, uint32_t row, uint32_t step, uint32_t c3,
                               uint32_t key0, uint32_t key1) noexcept nogil:
    fr_bernoulli_f32(act, bias, scale, sample, n, col0, row, step, c3, key0, key1)


cdef void sample_bernoulli_f64(double *act, const double *bias, double scale, double *sample,
                               int n, uint32_t col0, uint32_t row, uint32_t step, uint32_t c3,
                               uint32_t key0, uint32_t key1) noexcept nogil:
    fr_bernoulli_f64(act, bias, scale, sample, n, col0, row, step, c3, key0, key1)


cdef void sample_gaussian_f32(float *act, const float *bias, int n, uint32_t col0, uint32_t row,
                              uint32_t step, uint32_t c3, uint32_t key0,
                              uint32_t key1) noexcept nogil:
    fr_gaussian_f32(act, bias, n, col0, row, step, c3, key0, key1)


cdef void sample_gaussian_f64(double *act, const double *bias, int n, uint32_t col0,
                              uint32_t row, uint32_t step, uint32_t c3, uint32_t key0,
                              uint32_t key1) noexcept nogil:
    fr_gaussian_f64(act, bias, n, col0, row, step, c3, key0, key1)


# Random-stream identifiers (high byte of counter word c3): _random.py owns
# them; the kernels use the same values from _random.pxd.
from fastrbm._random import STREAM_AIS, STREAM_MONITOR, STREAM_SAMPLE, STREAM_TRAIN


def compiled_streams():
    """The stream ids the compiled kernels were built with (_random.pxd), by
    name as in ``_random.STREAMS``: tests hold the two equal."""
    return {"train": streams.STREAM_TRAIN, "sample": streams.STREAM_SAMPLE,
            "monitor": streams.STREAM_MONITOR, "ais": streams.STREAM_AIS,
            "dropout": streams.STREAM_DROPOUT, "tempering": streams.STREAM_TEMPERING,
            "tempering_swap": streams.STREAM_TEMPERING_SWAP,
            "pt_train": streams.STREAM_PT_TRAIN}


# Widths of the Philox counter fields (layout in _kernels.h).  No call may
# take a field past its width: the counter would wrap and draws repeat.  The
# entry points below check this (ValueError) before any kernel runs.
#: Largest phase (low 24 bits of c3).
MAX_PHASE = (1 << 24) - 1
#: Most Gibbs steps per call or update: training uses phases up to 2k and
#: gibbs/sample up to 2k - 1, so k <= 2**23 - 1 keeps both within MAX_PHASE.
MAX_GIBBS_STEPS = (1 << 23) - 1
#: Steps (c2: minibatch update or call index) and rows (c1) are 32-bit.
COUNTER_LIMIT = 1 << 32
#: Largest stream id (high byte of c3).
MAX_STREAM = 255


def check_counters(rows=0, step=0, n_steps=1, stream=0, phase=0):
    """ValueError unless ``rows`` rows (c1 = 0..rows-1), the steps
    ``step .. step + n_steps - 1`` (c2), ``stream`` and the phases up to
    ``phase`` (c3) all fit their Philox counter fields.  Returns ``step``
    as an int."""
    if not 0 <= rows <= COUNTER_LIMIT:
        raise ValueError(f"{rows} rows exceed the 2**32 rows a call can address "
                         f"(counter word c1); split the call")
    if not (isinstance(step, (int, np.integer)) and 0 <= step
            and step + n_steps <= COUNTER_LIMIT):
        raise ValueError(f"step counter {step!r} (+ {n_steps} steps) is outside [0, 2**32): "
                         f"the 32-bit Philox step word would wrap and repeat earlier draws")
    if not 0 <= stream <= MAX_STREAM:
        raise ValueError(f"stream must be in [0, {MAX_STREAM}], got {stream}")
    if not 0 <= phase <= MAX_PHASE:
        raise ValueError(f"phase {phase} exceeds the 24-bit phase field (at most "
                         f"{MAX_PHASE}): at most {MAX_GIBBS_STEPS} Gibbs steps per call")
    return int(step)


def check_sweeps(n_betas, n, n_gibbs, k, first_sweep, n_sweeps, gibbs_stream, swap_stream,
                 swap_step_mult, swap_step_offset):
    """The schedule of ``tempered_sweeps`` on every engine checked: one beta
    per replica (R = ``n_betas``, at least 2), ``n_gibbs`` in [0, R], ``k``
    Gibbs steps, and every Gibbs step t R + r and swap step t mult + offset
    of the sweeps inside its Philox word.  Returns (first_sweep, n_sweeps)
    as ints."""
    R = n_betas
    if R < 2:
        raise ValueError(f"betas must have one value per replica ({R}, at least 2)")
    if not 0 <= n_gibbs <= R:
        raise ValueError(f"n_gibbs must be in [0, {R}], got {n_gibbs}")
    if not 1 <= k <= MAX_GIBBS_STEPS:
        raise ValueError(f"k must be in [1, {MAX_GIBBS_STEPS}], got {k}")
    first_sweep, n_sweeps = int(first_sweep), int(n_sweeps)
    check_counters(n, first_sweep * R, n_sweeps * R, gibbs_stream, 2 * k - 1)
    check_counters(n, first_sweep * swap_step_mult + swap_step_offset,
                   max(0, n_sweeps - 1) * swap_step_mult + 1, swap_stream, 0)
    return first_sweep, n_sweeps


def check_key(key):
    """The Philox key as two ints in [0, 2**32); ValueError for anything else
    (a key of another length, negative or too large words, non-integers)."""
    k = np.asarray(key)
    if k.shape != (2,) or k.dtype.kind not in "iu":
        raise ValueError(f"the Philox key must be 2 integer words, got an array of shape "
                         f"{k.shape} and dtype {k.dtype}")
    words = (int(k[0]), int(k[1]))
    if not all(0 <= w < COUNTER_LIMIT for w in words):
        raise ValueError(f"the Philox key words must be in [0, 2**32), got {words}")
    return words


def simd_dispatch():
    """Which path the sampling kernels take on this CPU ('avx2' or scalar)."""
    return fr_simd_dispatch().decode()


def set_simd(bint enable):
    """Use the SIMD sampling path when the CPU has it (True) or force the scalar
    path (False) in every CPU kernel (they all draw through this module);
    returns whether SIMD was in use.  For tests and benchmarks."""
    return bool(fr_set_simd(enable))


def philox4x32_10(counters, key):
    """Philox4x32-10 blocks: ``counters`` (n, 4) uint32, ``key`` (2,) uint32."""
    cdef uint32_t[:, ::1] ctr = np.ascontiguousarray(counters, dtype=np.uint32)
    cdef uint32_t[::1] key_v = np.ascontiguousarray(key, dtype=np.uint32)
    if ctr.shape[1] != 4 or key_v.shape[0] != 2:
        raise ValueError("counters must have shape (n, 4) and key shape (2,)")
    out_arr = np.empty((ctr.shape[0], 4), dtype=np.uint32)
    cdef uint32_t[:, ::1] out = out_arr
    cdef Py_ssize_t i
    for i in range(ctr.shape[0]):
        fr_philox4x32_10(&ctr[i, 0], &key_v[0], &out[i, 0])
    return out_arr


def _sampler_counters(Py_ssize_t n, Py_ssize_t m, Py_ssize_t n_bias, step, unsigned int stream,
                      unsigned int phase):
    """The step word of a sampler call on an (n, m) activation, after its
    checks: one bias per column, and counters that do not wrap."""
    if n_bias != m:
        raise ValueError(f"bias has {n_bias} entries but activation has {m} columns")
    return check_counters(n, step, 1, stream, phase)


def bernoulli_sample(const floating[:, ::1] activation, const floating[::1] bias, key,
                     step, unsigned int stream, unsigned int phase):
    """The fused kernel alone: returns (proba, sample) for
    proba = sigmoid(activation + bias), row r drawn with counter row r."""
    cdef Py_ssize_t n = activation.shape[0], m = activation.shape[1], r
    cdef uint32_t step_word = _sampler_counters(n, m, bias.shape[0], step, stream, phase)
    cdef uint32_t key_words[2]
    proba_arr = np.array(activation, dtype=np.float32 if floating is float else np.float64,
                         copy=True)
    sample_arr = np.empty_like(proba_arr)
    if n == 0 or m == 0:
        return proba_arr, sample_arr
    cdef floating[:, ::1] proba = proba_arr
    cdef floating[:, ::1] sample = sample_arr
    key_words[0], key_words[1] = check_key(key)
    with nogil:
        for r in range(n):
            bernoulli(&proba[r, 0], &bias[0], 1, &sample[r, 0], <int>m, 0, r,
                      step_word, counter_word3(stream, phase), key_words)
    return proba_arr, sample_arr


def gaussian_sample(const floating[:, ::1] activation, const floating[::1] bias, key,
                    step, unsigned int stream, unsigned int phase):
    """The Gaussian visible draw alone: activation + bias + z, z ~ N(0, 1) by
    Box-Muller on column pairs (_kernels.h); row r drawn with counter row r."""
    cdef Py_ssize_t n = activation.shape[0], m = activation.shape[1], r
    cdef uint32_t step_word = _sampler_counters(n, m, bias.shape[0], step, stream, phase)
    cdef uint32_t key_words[2]
    out_arr = np.array(activation, dtype=np.float32 if floating is float else np.float64,
                       copy=True)
    if n == 0 or m == 0:
        return out_arr
    cdef floating[:, ::1] out = out_arr
    key_words[0], key_words[1] = check_key(key)
    with nogil:
        for r in range(n):
            gaussian(&out[r, 0], &bias[0], <int>m, 0, r, step_word,
                     counter_word3(stream, phase), key_words)
    return out_arr


def uniforms(key, rows, Py_ssize_t n_cols, unsigned long step, unsigned int stream,
             unsigned int phase, dtype):
    """The uniforms u(row, column) of the given rows, columns 0..n_cols-1
    (``step`` is taken modulo 2**32, as the reference does: this addresses
    single counters and draws no sequence that could wrap)."""
    cdef Py_ssize_t[::1] rows_v = np.ascontiguousarray(rows, dtype=np.intp)
    cdef Py_ssize_t n = rows_v.shape[0], r, j
    if n and (np.min(rows_v) < 0 or np.max(rows_v) >= COUNTER_LIMIT):
        raise ValueError("rows must be in [0, 2**32) (counter word c1)")
    if n_cols < 0:
        raise ValueError(f"n_cols must be >= 0, got {n_cols}")
    check_counters(0, 0, 1, stream, phase)
    cdef uint32_t step_word = <uint32_t>step
    cdef uint32_t ctr[4]
    cdef uint32_t key_words[2]
    cdef uint32_t block[4]
    words_arr = np.empty((n, n_cols), dtype=np.uint32)
    cdef uint32_t[:, ::1] words = words_arr
    key_words[0], key_words[1] = check_key(key)
    ctr[2] = step_word
    ctr[3] = counter_word3(stream, phase)
    for r in range(n):
        ctr[1] = <uint32_t>rows_v[r]
        for j in range(n_cols):
            if j % 4 == 0:
                ctr[0] = <uint32_t>(j // 4)
                fr_philox4x32_10(ctr, key_words, block)
            words[r, j] = block[j % 4]
    if np.dtype(dtype) == np.float32:
        return (words_arr >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)
    return words_arr.astype(np.float64) * 2.0 ** -32


# ---------------------------------------------------------------------------
# Annealed importance sampling (evaluation.log_partition_ais)
# ---------------------------------------------------------------------------
