# cython: language_level=3, cdivision=True
# cython: initializedcheck=False, nonecheck=False, embedsignature=True
"""CPU engine: nogil Cython kernels with OpenMP and BLAS.

Every public function here has a twin of the same name and meaning in
``_reference.py`` (plain NumPy); tests hold the two equal.  Python objects are
handled only in the ``def`` wrappers; the kernels get raw pointers.

Parallel decomposition: every OpenMP loop runs over *fixed-size* blocks (of
hidden units, visible units or rows) whose size never depends on the thread
count, and each block is computed by one BLAS call plus the fused sampler.
So a block's result is the same whichever thread computes it, and results are
bit-identical for any ``n_threads``.  BLAS must be single-threaded while these
kernels run (the caller, ``_backend``, arranges that): one party owns the cores.
"""
from time import perf_counter

import numpy as np
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange, parallel, threadid
from libc.stdint cimport uint32_t, int32_t, int64_t, uint8_t
from libc.string cimport memset
from libc.math cimport log1p, exp, log, fabs, expm1, expm1f, log1pf
from cpython.exc cimport PyErr_CheckSignals
from fastrbm._blas cimport matmul_ab, matmul_abt, matmul_atb
from fastrbm cimport _random as streams

cnp.import_array()
fr_init_dispatch()

cdef extern from "_kernels.h" nogil:
    int fr_openmp_enabled()
    int fr_max_threads()
    const char *fr_simd_dispatch()
    void fr_init_dispatch()
    int fr_set_simd(int enable)
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

# Row blocks of the row-parallel operations (transform, free energy, gibbs).
# Fixed: block sizes must never depend on the thread count.
cdef enum:
    ROW_BLOCK = 64


cdef Py_ssize_t _block_span_override = 0


def _set_block_span(Py_ssize_t span):
    """Force the units per pair of training blocks (0: automatic).  For
    benchmarking the decomposition only: results then change by rounding,
    exactly as they would for another layer size."""
    global _block_span_override
    if span != 0 and span < 8:
        raise ValueError("span must be 0 or >= 8")
    previous = _block_span_override
    _block_span_override = span
    return previous


# Long kernels (gibbs, AIS) run in chunks of Gibbs steps or temperatures and
# take the GIL between chunks to look for pending signals, so that Ctrl-C
# stops them within about a second.  Chunks are sized by the time they take
# (doubling from one step while a chunk takes under CHUNK_SECONDS / 2,
# halving above 2 * CHUNK_SECONDS), so a busy machine does not make them
# slow to react.  A chunk continues the previous one's Philox counters and
# states exactly: the result does not depend on the chunking.
CHUNK_SECONDS = 0.05
cdef Py_ssize_t _fixed_chunk = 0


def _set_chunk_steps(Py_ssize_t steps):
    """Fix the steps (temperatures) per chunk of ``gibbs`` / ``ais_log_weights``
    (tests; 0: sized by time, the default); returns the previous setting."""
    global _fixed_chunk
    if steps < 0:
        raise ValueError("steps must be >= 0")
    previous = _fixed_chunk
    _fixed_chunk = steps
    return previous


cdef Py_ssize_t next_chunk(Py_ssize_t chunk, double seconds):
    """The next chunk's length after one of ``chunk`` steps took ``seconds``."""
    if _fixed_chunk:
        return _fixed_chunk
    if seconds < CHUNK_SECONDS / 2 and chunk < (1 << 30):
        return 2 * chunk
    if seconds > 2 * CHUNK_SECONDS and chunk > 1:
        return chunk // 2
    return chunk


cdef inline Py_ssize_t unit_block(Py_ssize_t dim, Py_ssize_t batch_size) noexcept nogil:
    """Width of the blocks of hidden or visible units in training.

    A function of the layer size and batch size only (never of the thread
    count), a multiple of 4 (one Philox block holds 4 columns), and an even
    number of blocks (balances two threads).  Every block re-packs the
    operand its GEMM shares with the other blocks (the batch), so blocks are
    wider for larger batches: 2 blocks per `span` units with span = 4 x batch
    rounded up to a power of two within [128, 1024] (measured best on 2 cores
    for batches 10, 32, 100 and 1000; benchmarks/README.md).
    """
    cdef Py_ssize_t span = 128
    while span < 4 * batch_size and span < 1024:
        span *= 2
    if _block_span_override > 0:
        span = _block_span_override
    cdef Py_ssize_t n_blocks = 2 * ((dim + span - 1) // span)
    cdef Py_ssize_t width = (dim + n_blocks - 1) // n_blocks
    return (width + 3) // 4 * 4

# Random-stream identifiers (high byte of counter word c3): _random.py owns
# them; the kernels use the same values from _random.pxd.
from fastrbm._random import STREAM_AIS, STREAM_MONITOR, STREAM_SAMPLE, STREAM_TRAIN


def compiled_streams():
    """The stream ids the compiled kernels were built with (_random.pxd), by
    name as in ``_random.STREAMS``: tests hold the two equal."""
    return {"train": streams.STREAM_TRAIN, "sample": streams.STREAM_SAMPLE,
            "monitor": streams.STREAM_MONITOR, "ais": streams.STREAM_AIS,
            "dropout": streams.STREAM_DROPOUT}

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
# dimensions the kernels take as C int
cdef Py_ssize_t INT_LIMIT = 2147483647


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


def check_dims(Py_ssize_t H, Py_ssize_t D, Py_ssize_t n_vbias=-1, Py_ssize_t n_hbias=-1,
               Py_ssize_t n_cols=-1, str what="X", int n_threads=1):
    """ValueError unless W is (H, D) with 1 <= H, D < 2**31 and the biases
    and the input's column count (each skipped when -1) match it: the
    kernels index every buffer by H and D.  The per-thread scratch needs
    n_threads >= 1.  The GPU engine (``_cupy``) runs the same check."""
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if H < 1 or D < 1 or H > INT_LIMIT or D > INT_LIMIT:
        raise ValueError(f"W must have between 1 and 2**31 - 1 rows and columns, "
                         f"got shape ({H}, {D})")
    if n_vbias >= 0 and n_vbias != D:
        raise ValueError(f"vbias has {n_vbias} entries but W has {D} columns")
    if n_hbias >= 0 and n_hbias != H:
        raise ValueError(f"hbias has {n_hbias} entries but W has {H} rows")
    if n_cols >= 0 and n_cols != D:
        raise ValueError(f"{what} has {n_cols} columns but W has shape ({H}, {D})")

cdef enum:
    SRC_DENSE = 0
    SRC_CSR = 1
    DT_F32 = 0
    DT_F64 = 1
    DT_U8 = 2
    DT_BOOL = 3

cdef struct Source:
    int kind
    int dtype
    int index64
    Py_ssize_t itemsize
    const char *data
    Py_ssize_t stride0
    Py_ssize_t stride1
    const char *indptr
    const char *indices
    Py_ssize_t n_rows
    Py_ssize_t n_cols
    int clip

def openmp_enabled():
    """Whether the extension was compiled with OpenMP."""
    return bool(fr_openmp_enabled())


def max_threads():
    """Threads an OpenMP region gets by default (OMP_NUM_THREADS, threadpoolctl)."""
    return fr_max_threads()


def simd_dispatch():
    """Which path the sampling kernels take on this CPU ('avx2' or scalar)."""
    return fr_simd_dispatch().decode()


def set_simd(bint enable):
    """Use the SIMD sampling path when the CPU has it (True) or force the scalar
    path (False); returns whether SIMD was in use.  For tests and benchmarks."""
    return bool(fr_set_simd(enable))


_DTYPE_CODES = {np.dtype(np.float32): DT_F32, np.dtype(np.float64): DT_F64,
                np.dtype(np.uint8): DT_U8, np.dtype(np.bool_): DT_BOOL}


cdef class DataSource:
    """Read-only view of the user's X (dense or CSR) for the kernels.

    Nothing is copied: the kernels convert rows on the fly (uint8 means
    intensity / 255, bool means 0/1, float64 is rounded to float32 for a
    float32 model; with ``clip`` values are clamped to [0, 1]).  The input must
    have been validated by the caller.
    """
    cdef Source src
    cdef object _keep

    @property
    def shape(self):
        return (self.src.n_rows, self.src.n_cols)

    @property
    def clip(self):
        return bool(self.src.clip)

    def __cinit__(self, X, bint clip=False):
        cdef cnp.ndarray arr, data, indptr, indices
        memset(&self.src, 0, sizeof(Source))
        if getattr(X, "format", None) == "csr":
            data = np.ascontiguousarray(X.data)
            indptr = np.ascontiguousarray(X.indptr)
            indices = np.ascontiguousarray(X.indices)
            if indptr.dtype != indices.dtype or indptr.dtype not in (np.int32, np.int64):
                indptr = indptr.astype(np.int64)
                indices = indices.astype(np.int64)
            self.src.kind = SRC_CSR
            self.src.dtype = _DTYPE_CODES[data.dtype]
            self.src.itemsize = data.dtype.itemsize
            self.src.index64 = indptr.dtype == np.int64
            self.src.data = <const char *>cnp.PyArray_DATA(data)
            self.src.indptr = <const char *>cnp.PyArray_DATA(indptr)
            self.src.indices = <const char *>cnp.PyArray_DATA(indices)
            self._keep = (X, data, indptr, indices)
        else:
            arr = X
            self.src.kind = SRC_DENSE
            self.src.dtype = _DTYPE_CODES[arr.dtype]
            self.src.itemsize = arr.dtype.itemsize
            self.src.data = <const char *>cnp.PyArray_DATA(arr)
            self.src.stride0 = arr.strides[0]
            self.src.stride1 = arr.strides[1]
            self._keep = X
        self.src.n_rows = X.shape[0]
        self.src.n_cols = X.shape[1]
        self.src.clip = clip


def as_source(X, clip=False):
    """X as a :class:`DataSource` (unchanged if it already is one)."""
    return X if isinstance(X, DataSource) else DataSource(X, clip)


cdef inline floating load_value(int dtype, const char *ptr, floating like) noexcept nogil:
    if dtype == DT_F32:
        return <floating>(<const float *>ptr)[0]
    elif dtype == DT_F64:
        return <floating>(<const double *>ptr)[0]
    elif dtype == DT_U8:
        # rounded in the model's precision, as numpy's x.astype(dtype) / 255
        return (<floating>(<const uint8_t *>ptr)[0]) / <floating>255.0
    else:
        return 1 if (<const uint8_t *>ptr)[0] else 0


cdef inline void gather_row(const Source *s, Py_ssize_t i, floating *out) noexcept nogil:
    """Row i of the source as dense floats in out[0:n_cols]."""
    cdef Py_ssize_t j, p, p0, p1, col
    cdef const char *base
    cdef floating like = 0
    if s.kind == SRC_DENSE:
        base = s.data + i * s.stride0
        if s.dtype == DT_F32 and s.stride1 == 4:
            for j in range(s.n_cols):
                out[j] = <floating>(<const float *>base)[j]
        elif s.dtype == DT_F64 and s.stride1 == 8:
            for j in range(s.n_cols):
                out[j] = <floating>(<const double *>base)[j]
        else:
            for j in range(s.n_cols):
                out[j] = load_value(s.dtype, base + j * s.stride1, like)
    else:
        memset(out, 0, s.n_cols * sizeof(floating))
        if s.index64:
            p0 = (<const int64_t *>s.indptr)[i]
            p1 = (<const int64_t *>s.indptr)[i + 1]
        else:
            p0 = (<const int32_t *>s.indptr)[i]
            p1 = (<const int32_t *>s.indptr)[i + 1]
        for p in range(p0, p1):
            if s.index64:
                col = (<const int64_t *>s.indices)[p]
            else:
                col = (<const int32_t *>s.indices)[p]
            out[col] = load_value(s.dtype, s.data + p * s.itemsize, like)
    if s.clip:
        for j in range(s.n_cols):
            like = out[j]
            out[j] = 0 if like < 0 else (1 if like > 1 else like)


def find_invalid(DataSource source):
    """First stored value that is NaN, infinite or (unless the source clips)
    outside [0, 1].

    Returns ``None`` or ``(row, column, value)``.  For CSR input a column index
    out of range is reported with ``value=None``.  One pass, no temporaries.
    """
    cdef const Source *s = &source.src
    cdef Py_ssize_t i, j, p, p0, p1, col
    cdef double x = 0, like = 0
    cdef Py_ssize_t bad_row = -1, bad_col = -1
    cdef int bad_index = 0
    if s.dtype == DT_U8 or s.dtype == DT_BOOL:
        if s.kind == SRC_DENSE:
            return None
    with nogil:
        if s.kind == SRC_DENSE:
            for i in range(s.n_rows):
                for j in range(s.n_cols):
                    x = load_value(s.dtype, s.data + i * s.stride0 + j * s.stride1, like)
                    if not ((x - x == 0) if s.clip else (x >= 0.0 and x <= 1.0)):
                        bad_row = i
                        bad_col = j
                        break
                if bad_row >= 0:
                    break
        else:
            for i in range(s.n_rows):
                if s.index64:
                    p0 = (<const int64_t *>s.indptr)[i]
                    p1 = (<const int64_t *>s.indptr)[i + 1]
                else:
                    p0 = (<const int32_t *>s.indptr)[i]
                    p1 = (<const int32_t *>s.indptr)[i + 1]
                for p in range(p0, p1):
                    if s.index64:
                        col = (<const int64_t *>s.indices)[p]
                    else:
                        col = (<const int32_t *>s.indices)[p]
                    if col < 0 or col >= s.n_cols:
                        bad_row = i
                        bad_col = col
                        bad_index = 1
                        break
                    x = load_value(s.dtype, s.data + p * s.itemsize, like)
                    if not ((x - x == 0) if s.clip else (x >= 0.0 and x <= 1.0)):
                        bad_row = i
                        bad_col = col
                        break
                if bad_row >= 0:
                    break
    if bad_row < 0:
        return None
    return (bad_row, bad_col, None if bad_index else x)


cdef inline void bernoulli(floating *act, const floating *bias, floating scale,
                           floating *sample, int n, Py_ssize_t col0, Py_ssize_t row,
                           uint32_t step, uint32_t c3, const uint32_t *key) noexcept nogil:
    if floating is float:
        fr_bernoulli_f32(act, bias, scale, sample, n, <uint32_t>col0, <uint32_t>row,
                         step, c3, key[0], key[1])
    else:
        fr_bernoulli_f64(act, bias, scale, sample, n, <uint32_t>col0, <uint32_t>row,
                         step, c3, key[0], key[1])


cdef inline void gaussian(floating *act, const floating *bias, int n, Py_ssize_t col0,
                          Py_ssize_t row, uint32_t step, uint32_t c3,
                          const uint32_t *key) noexcept nogil:
    """Gaussian visible draw in place: act = act + bias + z (Box-Muller, _kernels.h)."""
    if floating is float:
        fr_gaussian_f32(act, bias, n, <uint32_t>col0, <uint32_t>row, step, c3, key[0], key[1])
    else:
        fr_gaussian_f64(act, bias, n, <uint32_t>col0, <uint32_t>row, step, c3, key[0], key[1])


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


# ---------------------------------------------------------------------------
# Training: CD-k / PCD-k over a sequence of minibatches
# ---------------------------------------------------------------------------

cdef struct TrainConfig:
    int k
    int persistent
    double learning_rate
    double momentum
    double weight_decay
    double l1
    double sparsity_target
    double sparsity_cost
    double sparsity_decay
    int gaussian      # visible units: 0 Bernoulli, 1 Gaussian
    int has_sigma     # Gaussian units with per-feature s = exp(log_var / 2) (else s = 1)
    int learn_sigma   # also update log_var (learned s, Cho, Ilin & Raiko 2011)


# Bounds of learned log-variances, as _reference.LOG_VAR_MIN / LOG_VAR_MAX
# (s in [1e-2, 1e2] on the standardised scale; see the reference for why)
cdef double LOG_VAR_MIN = 2 * log(1e-2)
cdef double LOG_VAR_MAX = 2 * log(1e2)


cdef inline floating penalised(floating x, floating w, floating lr, floating wd, floating l1,
                               floating pen, floating vbar_i, bint sparse_on) noexcept nogil:
    """x plus the elementwise part of weight w's step: weight decay, L1, and
    the sparsity penalty's pull pen * vbar_i (pen: the hidden unit's share)."""
    cdef floating sgn = (w > 0) - (w < 0)
    return x - lr * (wd * w + l1 * sgn) + (pen * vbar_i if sparse_on else 0)


cdef inline void add_step(floating *param, floating *velocity, Py_ssize_t i, floating mom,
                          floating step) noexcept nogil:
    """param[i] += step, through the momentum buffer when there is one."""
    if velocity == NULL:
        param[i] = param[i] + step
    else:
        velocity[i] = mom * velocity[i] + step
        param[i] = param[i] + velocity[i]


cdef inline void update_weight_rows(const TrainConfig *cfg, int nh, int D, int K,
                                    const floating *A, int ldA, const floating *V,
                                    floating *W, floating *W_vel, floating *G,
                                    floating *zpart, const floating *activity,
                                    const floating *vbar) noexcept nogil:
    """The training step of nh rows of W (one block of hidden units), in place.

    step = A^T V (the stacked statistics, pre-scaled: A's columns are this
    block's, A has row stride ldA) - lr (wd W + l1 sign W)
    + lr sparsity_cost (target - activity_j) vbar_i, added to W through the
    momentum buffer W_vel when there is one (W_vel = mom W_vel + step).

    The GEMM adds its product into a buffer the update writes anyway, so the
    sum is formed in one of three orders (the same value up to rounding; each
    kept so that results stay bit-identical):
    - plain SGD (W_vel and G NULL): the elementwise part goes into W first,
      then the GEMM adds A^T V to W (beta 1);
    - momentum (W_vel): the GEMM forms mom W_vel + A^T V (beta mom), then the
      elementwise part is added and W += W_vel;
    - learned sigma (G, zpart non-NULL): the GEMM writes A^T V to G (beta 0),
      because the log-variance step needs sum_j W_ji G_ji with W before this
      update (zpart: this block's share, D values); then the elementwise
      part is added to G, and G goes through W_vel (if any) into W.
    """
    cdef floating lr = <floating>cfg.learning_rate
    cdef floating mom = <floating>cfg.momentum
    cdef floating wd = <floating>cfg.weight_decay
    cdef floating l1 = <floating>cfg.l1
    cdef floating sp_target = <floating>cfg.sparsity_target
    cdef floating sp_cost = <floating>cfg.sparsity_cost
    cdef bint sparse_on = cfg.sparsity_cost > 0
    cdef bint elementwise = cfg.weight_decay != 0 or cfg.l1 != 0 or sparse_on
    cdef floating *stats        # where the GEMM writes (or adds) A^T V
    cdef floating beta
    cdef floating pen, w, g
    cdef Py_ssize_t j, i
    if G != NULL:
        stats, beta = G, 0
    elif W_vel != NULL:
        stats, beta = W_vel, mom
    else:
        stats, beta = W, 1
    if stats == W and elementwise:
        for j in range(nh):
            pen = lr * sp_cost * (sp_target - activity[j]) if sparse_on else 0
            for i in range(D):
                w = W[j * D + i]
                W[j * D + i] = penalised(w, w, lr, wd, l1, pen, vbar[i], sparse_on)
    matmul_atb(nh, D, K, 1, A, ldA, V, D, beta, stats, D)
    if stats == W:
        return
    if G != NULL:
        for i in range(D):
            zpart[i] = 0
        for j in range(nh):
            for i in range(D):
                zpart[i] = zpart[i] + W[j * D + i] * G[j * D + i]
    for j in range(nh):
        pen = lr * sp_cost * (sp_target - activity[j]) if sparse_on else 0
        for i in range(D):
            w = W[j * D + i]
            g = stats[j * D + i]
            if elementwise:
                g = penalised(g, w, lr, wd, l1, pen, vbar[i], sparse_on)
            if W_vel != NULL:
                if stats == G:
                    # the GEMM did not fold the momentum in
                    g = mom * W_vel[j * D + i] + g
                W_vel[j * D + i] = g
            W[j * D + i] = w + g


cdef void cd_minibatches(const Source *src, const Py_ssize_t *order, Py_ssize_t n_order,
                         int batch_size, floating *W, floating *vbias, floating *hbias,
                         floating *chains, floating *W_vel, floating *vbias_vel,
                         floating *hbias_vel, floating *activity,
                         floating *V, floating *A, floating *Hs, floating *vbar,
                         floating *sums, floating *log_var, floating *sig, floating *G,
                         floating *zpart,
                         int D, int H, TrainConfig cfg, uint32_t step0,
                         const uint32_t *key, int n_threads) noexcept nogil:
    """Run ceil(n_order / batch_size) CD-k or PCD-k updates, in place.

    Buffers (all C-contiguous, allocated once per fit by the caller):
      V  (2B, D)  stacked visible statistics: data rows, then negative samples
      A  (2B, H)  stacked hidden statistics, pre-scaled so that the update is
                  W += A^T V (one GEMM); pos rows +lr/b * p, neg rows -lr/n * p
      Hs (B, H)   hidden samples of the chain (CD only; PCD uses `chains`)
      vbar (D)    batch mean of the data (sparsity penalty only)
      sums (H+2D) per-unit sums for the bias gradients
    With cfg.has_sigma (Gaussian units of per-feature s = exp(log_var / 2)):
      sig (4D)    1/s, b/s, and the per-unit sums of (u - b/s)^2 over the
                  data and the negative rows (learn_sigma)
    The kernel works on u = v / s: the data rows are scaled as they are
    gathered, the negative samples are drawn as u = (W^T h + b/s) + z, so
    V holds u and W += A^T V is the gradient of the energy's (v_i / s_i)
    W_ji h_j term; the visible bias step is (mean u_data - mean u_neg) / s.
    With cfg.learn_sigma also:
      G (H, D)    the statistics part of the weight step, A^T V, kept apart
                  because the log-variance gradient needs sum_j W_ji G_ji
                  with W before its update
      zpart (n_hblocks, D)  that sum per block of hidden units; the blocks
                  are added in block order (no dependence on thread count)
    and after the parameter updates (a barrier later)
      log_var += lr (ss_data / 2B - ss_neg / 2n) - (1/2) sum_j W_ji G_ji,
    clipped to [LOG_VAR_MIN, LOG_VAR_MAX] (see _reference.cd_update).
    """
    cdef Py_ssize_t n_batches = (n_order + batch_size - 1) // batch_size
    cdef Py_ssize_t hblock = unit_block(H, batch_size), vblock = unit_block(D, batch_size)
    cdef Py_ssize_t n_hblocks = (H + hblock - 1) // hblock
    cdef Py_ssize_t n_vblocks = (D + vblock - 1) // vblock
    cdef Py_ssize_t batch, start, bsz, nneg, blk, r, i, j, j0, i0, nh, nv, s, K
    cdef uint32_t step
    cdef floating lr = <floating>cfg.learning_rate
    cdef floating mom = <floating>cfg.momentum
    cdef floating wd = <floating>cfg.weight_decay
    cdef floating l1 = <floating>cfg.l1
    cdef floating sp_target = <floating>cfg.sparsity_target
    cdef floating sp_cost = <floating>cfg.sparsity_cost
    cdef floating sp_decay = <floating>cfg.sparsity_decay
    cdef int sparse_on = cfg.sparsity_cost > 0
    cdef int elementwise = cfg.weight_decay != 0 or cfg.l1 != 0 or sparse_on
    cdef floating pos_scale, neg_scale, acc, acc2, pen, w, sgn, g, sv
    cdef floating *hchain
    cdef floating *row_ptr
    cdef const floating *vdraw_bias = sig + D if cfg.has_sigma else vbias
    cdef double zval

    with parallel(num_threads=n_threads):
        for batch in range(n_batches):
            start = batch * batch_size
            bsz = n_order - start
            if bsz > batch_size:
                bsz = batch_size
            nneg = batch_size if cfg.persistent else bsz
            step = step0 + <uint32_t>batch
            pos_scale = lr / bsz
            neg_scale = -lr / nneg
            hchain = chains if cfg.persistent else Hs

            if cfg.has_sigma:
                # s of this minibatch (log_var changes after every update)
                for i in prange(D, schedule='static'):
                    sv = <floating>exp(0.5 * <double>log_var[i])
                    sig[i] = 1 / sv
                    sig[D + i] = vbias[i] * sig[i]

            for r in prange(bsz, schedule='static'):
                gather_row(src, order[start + r], V + r * D)
                if cfg.has_sigma:
                    for i in range(D):
                        V[r * D + i] = V[r * D + i] * sig[i]

            # positive phase: hidden probabilities of the data (+ the first
            # hidden draw for CD), block of hidden units by block
            for blk in prange(n_hblocks, schedule='dynamic'):
                j0 = blk * hblock
                nh = H - j0
                if nh > hblock:
                    nh = hblock
                matmul_abt(<int>bsz, <int>nh, D, 1, V, D, W + j0 * D, D, 0, A + j0, H)
                for r in range(bsz):
                    bernoulli(A + r * H + j0, hbias + j0,
                              1 if sparse_on else pos_scale,
                              NULL if cfg.persistent else Hs + r * H + j0,
                              <int>nh, j0, r, step, counter_word3(streams.STREAM_TRAIN, 0), key)
                if sparse_on:
                    for j in range(j0, j0 + nh):
                        acc = 0
                        for r in range(bsz):
                            acc = acc + A[r * H + j]
                            A[r * H + j] = A[r * H + j] * pos_scale
                        activity[j] = sp_decay * activity[j] + (1 - sp_decay) * (acc / bsz)

            for s in range(1, cfg.k + 1):
                # visible draw from the chain's hidden state
                for blk in prange(n_vblocks, schedule='dynamic'):
                    i0 = blk * vblock
                    nv = D - i0
                    if nv > vblock:
                        nv = vblock
                    matmul_ab(<int>nneg, <int>nv, H, 1, hchain, H, W + i0, D,
                              0, V + bsz * D + i0, D)
                    for r in range(nneg):
                        row_ptr = V + (bsz + r) * D + i0
                        visible_draw(cfg.gaussian, row_ptr, vdraw_bias + i0, <int>nv, i0, r,
                                     step, counter_word3(streams.STREAM_TRAIN, 2 * s - 1), key)
                    if sparse_on and s == 1:
                        for i in range(i0, i0 + nv):
                            acc = 0
                            for r in range(bsz):
                                acc = acc + V[r * D + i]
                            vbar[i] = acc / bsz
                # hidden probabilities (and draw) from the new visible state
                for blk in prange(n_hblocks, schedule='dynamic'):
                    j0 = blk * hblock
                    nh = H - j0
                    if nh > hblock:
                        nh = hblock
                    matmul_abt(<int>nneg, <int>nh, D, 1, V + bsz * D, D, W + j0 * D, D,
                               0, A + bsz * H + j0, H)
                    for r in range(nneg):
                        if s == cfg.k:
                            # last step: negative statistics; PCD also draws the
                            # chain's next hidden state
                            bernoulli(A + (bsz + r) * H + j0, hbias + j0, neg_scale,
                                      hchain + r * H + j0 if cfg.persistent else NULL,
                                      <int>nh, j0, r, step, counter_word3(streams.STREAM_TRAIN, 2 * s), key)
                        else:
                            bernoulli(A + (bsz + r) * H + j0, hbias + j0, 1,
                                      hchain + r * H + j0, <int>nh, j0, r, step,
                                      counter_word3(streams.STREAM_TRAIN, 2 * s), key)

            # update: W += A^T V as one GEMM over the stacked statistics, per
            # block of hidden units; biases alongside
            K = bsz + nneg
            for blk in prange(n_hblocks + n_vblocks, schedule='dynamic'):
                if blk < n_hblocks:
                    j0 = blk * hblock
                    nh = H - j0
                    if nh > hblock:
                        nh = hblock
                    update_weight_rows(&cfg, <int>nh, D, <int>K, A + j0, H, V, W + j0 * D,
                                       NULL if W_vel == NULL else W_vel + j0 * D,
                                       G + j0 * D if cfg.learn_sigma else NULL,
                                       zpart + blk * D if cfg.learn_sigma else NULL,
                                       activity + j0, vbar)
                    # bias gradients: row-major sweeps into per-unit sums
                    # (a strided column walk per unit misses the cache)
                    for j in range(j0, j0 + nh):
                        sums[j] = lr * sp_cost * (sp_target - activity[j]) if sparse_on else 0
                    for r in range(K):
                        row_ptr = A + r * H
                        for j in range(j0, j0 + nh):
                            sums[j] = sums[j] + row_ptr[j]
                    for j in range(j0, j0 + nh):
                        add_step(hbias, hbias_vel, j, mom, sums[j])
                else:
                    i0 = (blk - n_hblocks) * vblock
                    nv = D - i0
                    if nv > vblock:
                        nv = vblock
                    for i in range(i0, i0 + nv):
                        sums[H + i] = 0
                        sums[H + D + i] = 0
                    for r in range(bsz):
                        row_ptr = V + r * D
                        for i in range(i0, i0 + nv):
                            sums[H + i] = sums[H + i] + row_ptr[i]
                    for r in range(bsz, K):
                        row_ptr = V + r * D
                        for i in range(i0, i0 + nv):
                            sums[H + D + i] = sums[H + D + i] + row_ptr[i]
                    if cfg.learn_sigma:
                        for i in range(i0, i0 + nv):
                            sig[2 * D + i] = 0
                            sig[3 * D + i] = 0
                        for r in range(bsz):
                            row_ptr = V + r * D
                            for i in range(i0, i0 + nv):
                                g = row_ptr[i] - sig[D + i]
                                sig[2 * D + i] = sig[2 * D + i] + g * g
                        for r in range(bsz, K):
                            row_ptr = V + r * D
                            for i in range(i0, i0 + nv):
                                g = row_ptr[i] - sig[D + i]
                                sig[3 * D + i] = sig[3 * D + i] + g * g
                    for i in range(i0, i0 + nv):
                        acc = lr * (sums[H + i] / bsz - sums[H + D + i] / nneg)
                        if cfg.has_sigma:
                            # dE/db_i = -(v_i - b_i) / s_i^2 = -(u_i - b_i / s_i) / s_i
                            acc = acc * sig[i]
                        add_step(vbias, vbias_vel, i, mom, acc)

            if cfg.learn_sigma:
                # log-variance step: needs every hidden block's zpart (the
                # barrier at the end of the update loop), blocks added in order
                for i in prange(D, schedule='static'):
                    acc = lr * (sig[2 * D + i] / (2 * bsz) - sig[3 * D + i] / (2 * nneg))
                    acc2 = 0
                    for blk in range(n_hblocks):
                        acc2 = acc2 + zpart[blk * D + i]
                    zval = <double>(log_var[i] + (acc - acc2 / 2))
                    if zval < LOG_VAR_MIN:
                        zval = LOG_VAR_MIN
                    elif zval > LOG_VAR_MAX:
                        zval = LOG_VAR_MAX
                    elif zval != zval:
                        # a NaN step (a diverging fit) must not pass the clamp:
                        # no step; the fit's divergence check reports it
                        zval = <double>log_var[i]
                    log_var[i] = <floating>zval


def _ptr_or_null(arr):
    return arr is not None


def cd_update(X, cnp.ndarray order, int batch_size, floating[:, ::1] W,
              floating[::1] vbias, floating[::1] hbias, chains, W_vel, vbias_vel,
              hbias_vel, floating[::1] activity, workspace, config, key,
              step0, int n_threads, log_var=None):
    """Run CD-k / PCD-k minibatch updates over ``X[order]`` in place.

    Parameters
    ----------
    X : ndarray or scipy CSR, shape (n_samples, n_features)
        Validated input (float32/float64 in [0, 1], uint8, bool).
    order : ndarray of intp
        Row indices; batch ``t`` is ``order[t*batch_size:(t+1)*batch_size]``.
    batch_size : int
        Rows per minibatch, and number of persistent chains for PCD.
    W, vbias, hbias : arrays of the model dtype
        Parameters, updated in place.
    chains : ndarray (batch_size, n_hidden) or None
        Persistent hidden states (PCD) updated in place; None for CD.
    W_vel, vbias_vel, hbias_vel : arrays or None
        Momentum buffers (None when momentum is off).
    activity : ndarray (n_hidden,)
        Running mean hidden activity for the sparsity penalty.
    workspace : dict
        Buffers from :func:`make_workspace`.
    config : object
        Has k, persistent, learning_rate, momentum, weight_decay, l1,
        sparsity_target, sparsity_cost, sparsity_decay, and optionally
        ``gaussian`` (True: Gaussian visible units, drawn as mean + s * N(0, 1);
        default False: Bernoulli) and ``learn_sigma`` (True: update
        ``log_var`` too; default False).
    key : ndarray of uint32, shape (2,)
        Philox key.
    step0 : int
        Update index of the first minibatch (counter word c2); the call's
        last update index must stay below 2**32, and ``config.k`` at most
        ``MAX_GIBBS_STEPS`` (the phase field holds 2k).
    n_threads : int
        OpenMP threads.
    log_var : ndarray (n_features,) of the model dtype, optional
        Gaussian units only: log-variances z = log s^2 of the visible units
        (energy sum_i (v_i - b_i)^2 / (2 s_i^2) - c.h - sum_ij (v_i / s_i) W_ji h_j),
        updated in place when ``config.learn_sigma``.  None: s = 1.  The
        extra buffers it needs are added to ``workspace`` on first use.
    """
    cdef DataSource source = as_source(X)
    cdef TrainConfig cfg
    cdef Py_ssize_t[::1] order_view = np.ascontiguousarray(order, dtype=np.intp)
    cdef uint32_t key_words[2]
    cdef int D = W.shape[1], H = W.shape[0]
    cdef floating[:, ::1] V = workspace["V"]
    cdef floating[:, ::1] A = workspace["A"]
    cdef floating[:, ::1] Hs = workspace["Hs"]
    cdef floating[::1] vbar = workspace["vbar"]
    cdef floating[::1] sums = workspace["sums"]
    cdef floating[:, ::1] chains_v
    cdef floating[:, ::1] W_vel_v
    cdef floating[::1] vb_vel_v, hb_vel_v
    cdef floating *chains_p = NULL
    cdef floating *W_vel_p = NULL
    cdef floating *vb_vel_p = NULL
    cdef floating *hb_vel_p = NULL
    cdef floating[::1] log_var_v, sig_v
    cdef floating[:, ::1] G_v, zpart_v
    cdef floating *log_var_p = NULL
    cdef floating *sig_p = NULL
    cdef floating *G_p = NULL
    cdef floating *zpart_p = NULL
    cdef Py_ssize_t n_hblocks
    cdef Py_ssize_t n_order = order_view.shape[0]
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], hbias.shape[0], source.src.n_cols,
               "X", n_threads)
    if activity.shape[0] != H:
        raise ValueError(f"activity has {activity.shape[0]} entries but W has {H} rows")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if (V.shape[0] < 2 * batch_size or V.shape[1] != D or A.shape[0] < 2 * batch_size
            or A.shape[1] != H or Hs.shape[0] < batch_size or Hs.shape[1] != H
            or vbar.shape[0] != D or sums.shape[0] != H + 2 * D):
        raise ValueError("workspace does not match the model and batch size")
    if n_order and (np.min(order_view) < 0 or np.max(order_view) >= source.src.n_rows):
        raise ValueError(f"order has row indices outside [0, {source.src.n_rows})")
    if not 1 <= config.k <= MAX_GIBBS_STEPS:
        raise ValueError(f"config.k must be in [1, {MAX_GIBBS_STEPS}], got {config.k}")
    cdef uint32_t step_word = check_counters(min(batch_size, n_order), step0,
                           (n_order + batch_size - 1) // batch_size,
                           streams.STREAM_TRAIN, 2 * config.k)
    cfg.k = config.k
    cfg.persistent = bool(config.persistent)
    cfg.learning_rate = config.learning_rate
    cfg.momentum = config.momentum
    cfg.weight_decay = config.weight_decay
    cfg.l1 = config.l1
    cfg.sparsity_target = config.sparsity_target
    cfg.sparsity_cost = config.sparsity_cost
    cfg.sparsity_decay = config.sparsity_decay
    # Gaussian visible units: the gradient has the same form (unit variance on
    # the standardised scale), only the visible draw differs
    cfg.gaussian = bool(getattr(config, "gaussian", False))
    cfg.learn_sigma = bool(getattr(config, "learn_sigma", False))
    cfg.has_sigma = log_var is not None
    if cfg.has_sigma and not cfg.gaussian:
        raise ValueError("log_var needs Gaussian visible units (config.gaussian)")
    if cfg.learn_sigma and not cfg.has_sigma:
        raise ValueError("config.learn_sigma needs the log_var array to update")
    if cfg.has_sigma:
        log_var_v = log_var
        if log_var_v.shape[0] != D:
            raise ValueError(f"log_var must have shape ({D},), got {log_var.shape}")
        log_var_p = &log_var_v[0]
        dtype = np.float32 if floating is float else np.float64
        # buffers allocated once per fit: they live in the caller's workspace
        if workspace.get("sig") is None or workspace["sig"].shape != (4 * D,):
            workspace["sig"] = np.zeros(4 * D, dtype=dtype)
        sig_v = workspace["sig"]
        sig_p = &sig_v[0]
        if cfg.learn_sigma:
            n_hblocks = (H + unit_block(H, batch_size) - 1) // unit_block(H, batch_size)
            if workspace.get("G") is None or workspace["G"].shape != (H, D):
                workspace["G"] = np.empty((H, D), dtype=dtype)
            if (workspace.get("zpart") is None
                    or workspace["zpart"].shape != (n_hblocks, D)):
                workspace["zpart"] = np.empty((n_hblocks, D), dtype=dtype)
            G_v = workspace["G"]
            zpart_v = workspace["zpart"]
            G_p = &G_v[0, 0]
            zpart_p = &zpart_v[0, 0]
    if cfg.persistent:
        chains_v = chains
        if chains_v.shape[0] != batch_size or chains_v.shape[1] != H:
            raise ValueError("persistent chains must have shape (batch_size, n_components)")
        chains_p = &chains_v[0, 0]
    if W_vel is not None:
        W_vel_v = W_vel
        vb_vel_v = vbias_vel
        hb_vel_v = hbias_vel
        if (W_vel_v.shape[0] != H or W_vel_v.shape[1] != D or vb_vel_v.shape[0] != D
                or hb_vel_v.shape[0] != H):
            raise ValueError("momentum buffers must match W, vbias and hbias")
        W_vel_p = &W_vel_v[0, 0]
        vb_vel_p = &vb_vel_v[0]
        hb_vel_p = &hb_vel_v[0]
    key_words[0], key_words[1] = check_key(key)
    if order_view.shape[0] == 0:
        return
    with nogil:
        cd_minibatches(&source.src, &order_view[0], order_view.shape[0], batch_size,
                       &W[0, 0], &vbias[0], &hbias[0], chains_p, W_vel_p, vb_vel_p,
                       hb_vel_p, &activity[0], &V[0, 0], &A[0, 0], &Hs[0, 0], &vbar[0],
                       &sums[0], log_var_p, sig_p, G_p, zpart_p,
                       D, H, cfg, step_word, key_words, n_threads)


def make_workspace(int n_features, int n_components, int batch_size, dtype):
    """Buffers for :func:`cd_update`, allocated once per fit."""
    return {
        "V": np.empty((2 * batch_size, n_features), dtype=dtype),
        "A": np.empty((2 * batch_size, n_components), dtype=dtype),
        "Hs": np.empty((batch_size, n_components), dtype=dtype),
        "vbar": np.zeros(n_features, dtype=dtype),
        "sums": np.zeros(n_components + 2 * n_features, dtype=dtype),
    }


# ---------------------------------------------------------------------------
# Row-blocked operations: transform, free energy, Gibbs chains
# ---------------------------------------------------------------------------

cdef void hidden_rows(const Source *src, Py_ssize_t n_rows, const floating *W,
                      const floating *hbias, const floating *vbias, floating *out,
                      floating *scratch, const Py_ssize_t *flip, int D, int H,
                      int mode, int n_threads, const floating *inv_s) noexcept nogil:
    """Per block of ROW_BLOCK rows: gather, one GEMM, then per mode
    0: out (n, H) = sigmoid(v W^T + c)
    1: out (n,)   = free energy  -v.b - sum_j softplus(c_j + W_j.v)
    2: out (n,)   = Gaussian free energy sum_i (v_i - b_i)^2 / 2 - sum_j softplus(.)
    flip (may be NULL): column whose bit is flipped in each row first.
    inv_s (may be NULL; Gaussian units of per-feature s): rows are scaled to
    u = v / s as they are gathered, and mode 2 is
    sum_i (u_i - b_i / s_i)^2 / 2 - sum_j softplus(c_j + W_j.u).
    """
    cdef Py_ssize_t n_blocks = (n_rows + ROW_BLOCK - 1) // ROW_BLOCK
    cdef Py_ssize_t blk, r0, nr, r, j, i
    cdef floating *v
    cdef floating *pre
    cdef floating x, acc
    cdef int tid
    for blk in prange(n_blocks, schedule='dynamic', num_threads=n_threads):
        tid = threadid()
        v = scratch + tid * ROW_BLOCK * (D + H)
        pre = v + ROW_BLOCK * D
        r0 = blk * ROW_BLOCK
        nr = n_rows - r0
        if nr > ROW_BLOCK:
            nr = ROW_BLOCK
        for r in range(nr):
            gather_row(src, r0 + r, v + r * D)
            if flip != NULL:
                v[r * D + flip[r0 + r]] = 1 - v[r * D + flip[r0 + r]]
            if inv_s != NULL:
                for i in range(D):
                    v[r * D + i] = v[r * D + i] * inv_s[i]
        if mode == 0:
            matmul_abt(<int>nr, H, D, 1, v, D, W, D, 0, out + r0 * H, H)
            for r in range(nr):
                for j in range(H):
                    if floating is float:
                        out[(r0 + r) * H + j] = fr_sigmoidf(out[(r0 + r) * H + j] + hbias[j])
                    else:
                        out[(r0 + r) * H + j] = fr_sigmoid(out[(r0 + r) * H + j] + hbias[j])
        else:
            matmul_abt(<int>nr, H, D, 1, v, D, W, D, 0, pre, H)
            for r in range(nr):
                acc = 0
                if mode == 2:
                    for i in range(D):
                        if inv_s != NULL:
                            x = v[r * D + i] - vbias[i] * inv_s[i]
                        else:
                            x = v[r * D + i] - vbias[i]
                        acc = acc + x * x / 2
                else:
                    for i in range(D):
                        acc = acc - v[r * D + i] * vbias[i]
                for j in range(H):
                    x = pre[r * H + j] + hbias[j]
                    # softplus(x) = max(x, 0) + log1p(exp(-|x|)), stable
                    acc = acc - ((x if x > 0 else 0) + <floating>log1p(exp(-fabs(x))))
                out[r0 + r] = acc


def _scratch(n_threads, D, H, dtype):
    return np.empty(max(n_threads, 1) * ROW_BLOCK * (D + H), dtype=dtype)


def _inverse_sigma(sigma, Py_ssize_t D, dtype):
    """1 / sigma in ``dtype`` (None stays None), checked: shape (D,), finite, > 0."""
    if sigma is None:
        return None
    s = np.ascontiguousarray(sigma, dtype=dtype)
    if s.shape != (D,) or not np.all(np.isfinite(s)) or not np.all(s > 0):
        raise ValueError(f"sigma must be {D} finite positive values, got shape {s.shape}")
    return np.ascontiguousarray(1 / s, dtype=dtype)


def hidden_proba(X, const floating[:, ::1] W, const floating[::1] hbias, int n_threads,
                 sigma=None):
    """P(h = 1 | v) for every row of X, shape (n_samples, n_components)
    (``sigma``: Gaussian units of per-feature s, P(h = 1 | v) = sigmoid(c + W (v / s)))."""
    cdef DataSource source = as_source(X)
    check_dims(W.shape[0], W.shape[1], -1, hbias.shape[0], source.src.n_cols, "X", n_threads)
    cdef int H = W.shape[0], D = W.shape[1]
    cdef Py_ssize_t n = source.src.n_rows
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] inv_s
    cdef const floating *inv_p = NULL
    inv = _inverse_sigma(sigma, D, dtype)
    if inv is not None:
        inv_s = inv
        inv_p = &inv_s[0]
    out_arr = np.empty((n, H), dtype=dtype)
    if n == 0:
        return out_arr
    cdef floating[:, ::1] out = out_arr
    cdef floating[::1] scratch = _scratch(n_threads, D, H, dtype)
    with nogil:
        hidden_rows(&source.src, n, &W[0, 0], &hbias[0], NULL, &out[0, 0], &scratch[0],
                    NULL, D, H, 0, n_threads, inv_p)
    return out_arr


def free_energy(X, const floating[:, ::1] W, const floating[::1] vbias,
                const floating[::1] hbias, int n_threads, flip=None, bint gaussian=False,
                sigma=None):
    """Free energy F(v) = -v.b - sum_j softplus(c_j + W_j.v) of every row.

    ``flip`` (intp array, one column per row) flips that bit of each row first:
    the pseudo-likelihood needs F of the flipped rows without copying X.
    With ``gaussian`` (unit-variance Gaussian visible units) F(v) =
    sum_i (v_i - b_i)^2 / 2 - sum_j softplus(c_j + W_j.v); ``flip`` must be None.
    ``sigma`` (Gaussian units of per-feature s): F(v) =
    sum_i (v_i - b_i)^2 / (2 s_i^2) - sum_j softplus(c_j + W_j.(v / s)).
    """
    if gaussian and flip is not None:
        raise ValueError("flip has no meaning for Gaussian visible units")
    if sigma is not None and not gaussian:
        raise ValueError("sigma needs Gaussian visible units (gaussian=True)")
    cdef DataSource source = as_source(X)
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], hbias.shape[0], source.src.n_cols,
               "X", n_threads)
    cdef int H = W.shape[0], D = W.shape[1]
    cdef Py_ssize_t n = source.src.n_rows
    cdef Py_ssize_t[::1] flip_v
    cdef const Py_ssize_t *flip_p = NULL
    dtype = np.float32 if floating is float else np.float64
    out_arr = np.empty(n, dtype=dtype)
    if n == 0:
        return out_arr
    cdef floating[::1] out = out_arr
    cdef floating[::1] scratch = _scratch(n_threads, D, H, dtype)
    cdef floating[::1] inv_s
    cdef const floating *inv_p = NULL
    inv = _inverse_sigma(sigma, D, dtype)
    if inv is not None:
        inv_s = inv
        inv_p = &inv_s[0]
    if flip is not None:
        flip_v = np.ascontiguousarray(flip, dtype=np.intp)
        if (flip_v.shape[0] != n or np.min(flip_v) < 0 or np.max(flip_v) >= D):
            raise ValueError(f"flip must hold one column index in [0, {D}) per row of X")
        flip_p = &flip_v[0]
    with nogil:
        hidden_rows(&source.src, n, &W[0, 0], &hbias[0], &vbias[0], &out[0], &scratch[0],
                    flip_p, D, H, 2 if gaussian else 1, n_threads, inv_p)
    return out_arr


def visible_proba(const floating[:, ::1] hidden, const floating[:, ::1] W,
                  const floating[::1] vbias, int n_threads, bint gaussian=False, sigma=None):
    """P(v = 1 | h) for every row of ``hidden``, shape (n_samples, n_features);
    with ``gaussian`` the conditional mean E[v | h] = W^T h + b instead
    (``sigma``: b + s * (W^T h))."""
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], -1, -1, "X", n_threads)
    if hidden.shape[1] != W.shape[0]:
        raise ValueError(f"hidden has {hidden.shape[1]} columns but W has {W.shape[0]} rows")
    cdef int H = W.shape[0], D = W.shape[1]
    cdef floating[::1] s_v
    cdef bint scaled = sigma is not None
    if scaled:
        if not gaussian:
            raise ValueError("sigma needs Gaussian visible units (gaussian=True)")
        _inverse_sigma(sigma, D, np.float64)      # the checks
        s_v = np.ascontiguousarray(sigma, dtype=np.float32 if floating is float else np.float64)
    cdef Py_ssize_t n = hidden.shape[0]
    cdef Py_ssize_t n_blocks = (n + ROW_BLOCK - 1) // ROW_BLOCK
    cdef Py_ssize_t blk, r0, nr, r, i
    dtype = np.float32 if floating is float else np.float64
    out_arr = np.empty((n, D), dtype=dtype)
    if n == 0:
        return out_arr
    cdef floating[:, ::1] out = out_arr
    for blk in prange(n_blocks, schedule='dynamic', num_threads=n_threads, nogil=True):
        r0 = blk * ROW_BLOCK
        nr = n - r0
        if nr > ROW_BLOCK:
            nr = ROW_BLOCK
        matmul_ab(<int>nr, D, H, 1, &hidden[r0, 0], H, &W[0, 0], D, 0, &out[r0, 0], D)
        for r in range(r0, r0 + nr):
            for i in range(D):
                if scaled:
                    out[r, i] = vbias[i] + s_v[i] * out[r, i]
                elif gaussian:
                    out[r, i] = out[r, i] + vbias[i]
                elif floating is float:
                    out[r, i] = fr_sigmoidf(out[r, i] + vbias[i])
                else:
                    out[r, i] = fr_sigmoid(out[r, i] + vbias[i])
    return out_arr


cdef void gibbs_rows(const Source *src, Py_ssize_t n_rows, const floating *W,
                     const floating *vbias, const floating *hbias, floating *out,
                     floating *scratch, int D, int H, int k, uint32_t step, uint32_t stream,
                     const uint32_t *key, int n_threads, bint gauss,
                     const floating *sig, int s_first, int s_last) noexcept nogil:
    """Steps s_first..s_last (of 1..k) v -> h -> v of Gibbs sampling from every
    row; the visible samples go to out (n, D).  Row r of the input uses counter
    row r.  s_first == 1 reads the rows from src; a later s_first continues
    from the states in out (the previous chunk's), so any split of 1..k into
    chunks gives the same result.
    sig (may be NULL; Gaussian units of per-feature s): (1/s, b/s, s); the
    chain runs on u = v / s (drawn as u = (W^T h + b/s) + z) and the result
    is v = s * u (after step k)."""
    cdef Py_ssize_t n_blocks = (n_rows + ROW_BLOCK - 1) // ROW_BLOCK
    cdef Py_ssize_t blk, r0, nr, r, i
    cdef int s, tid
    cdef floating *v
    cdef floating *h
    for blk in prange(n_blocks, schedule='dynamic', num_threads=n_threads):
        tid = threadid()
        h = scratch + tid * ROW_BLOCK * (D + H)
        r0 = blk * ROW_BLOCK
        nr = n_rows - r0
        if nr > ROW_BLOCK:
            nr = ROW_BLOCK
        v = out + r0 * D
        if s_first == 1:
            for r in range(nr):
                gather_row(src, r0 + r, v + r * D)
                if sig != NULL:
                    for i in range(D):
                        v[r * D + i] = v[r * D + i] * sig[i]
        for s in range(s_first, s_last + 1):
            matmul_abt(<int>nr, H, D, 1, v, D, W, D, 0, h, H)
            for r in range(nr):
                bernoulli(h + r * H, hbias, 1, h + r * H, H, 0, r0 + r, step,
                          counter_word3(stream, 2 * s - 2), key)
            matmul_ab(<int>nr, D, H, 1, h, H, W, D, 0, v, D)
            for r in range(nr):
                visible_draw(gauss, v + r * D, vbias if sig == NULL else sig + D, D, 0,
                             r0 + r, step, counter_word3(stream, 2 * s - 1), key)
        if sig != NULL and s_last == k:
            for r in range(nr):
                for i in range(D):
                    v[r * D + i] = sig[2 * D + i] * v[r * D + i]


def gibbs(X, const floating[:, ::1] W, const floating[::1] vbias,
          const floating[::1] hbias, int k, key, step, unsigned int stream, int n_threads,
          bint gaussian=False, sigma=None):
    """Visible samples after ``k`` Gibbs steps v -> h -> v started at each row of X
    (``gaussian``: Gaussian visible units of unit variance, or of per-feature
    standard deviation ``sigma``).  ``k`` is at most ``MAX_GIBBS_STEPS``
    (2**23 - 1: the phase field holds 2k - 1), ``step`` below 2**32."""
    cdef DataSource source = as_source(X)
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], hbias.shape[0], source.src.n_cols,
               "X", n_threads)
    if not 1 <= k <= MAX_GIBBS_STEPS:
        raise ValueError(f"k must be in [1, {MAX_GIBBS_STEPS}], got {k}")
    cdef uint32_t step_word = check_counters(source.src.n_rows, step, 1, stream, 2 * k - 1)
    cdef int H = W.shape[0], D = W.shape[1]
    cdef Py_ssize_t n = source.src.n_rows
    cdef uint32_t key_words[2]
    dtype = np.float32 if floating is float else np.float64
    out_arr = np.empty((n, D), dtype=dtype)
    if n == 0:
        return out_arr
    cdef floating[:, ::1] out = out_arr
    cdef floating[::1] scratch = _scratch(n_threads, D, H, dtype)
    cdef floating[::1] sig_v
    cdef const floating *sig_p = NULL
    if sigma is not None:
        if not gaussian:
            raise ValueError("sigma needs Gaussian visible units (gaussian=True)")
        inv = _inverse_sigma(sigma, D, dtype)
        # the same 1/s and b/s as the training kernel computes
        sig_v = np.concatenate([inv, np.asarray(vbias) * inv,
                                np.ascontiguousarray(sigma, dtype=dtype)]).astype(dtype)
        sig_p = &sig_v[0]
    key_words[0], key_words[1] = check_key(key)
    cdef int s_first = 1, s_last
    cdef Py_ssize_t chunk = _fixed_chunk or 1
    while True:
        s_last = k if k - s_first < chunk else <int>(s_first + chunk - 1)
        started = perf_counter()
        with nogil:
            gibbs_rows(&source.src, n, &W[0, 0], &vbias[0], &hbias[0], &out[0, 0],
                       &scratch[0], D, H, k, step_word, stream, key_words, n_threads,
                       gaussian, sig_p, s_first, s_last)
        if s_last >= k:
            break
        # raises KeyboardInterrupt (or what a signal handler raises) between chunks
        PyErr_CheckSignals()
        chunk = next_chunk(chunk, perf_counter() - started)
        s_first = s_last + 1
    return out_arr


# ---------------------------------------------------------------------------
# Direct access to the generator and the fused sampler (tests, other engines)
# ---------------------------------------------------------------------------

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


def bernoulli_sample(const floating[:, ::1] activation, const floating[::1] bias, key,
                     step, unsigned int stream, unsigned int phase):
    """The fused kernel alone: returns (proba, sample) for
    proba = sigmoid(activation + bias), row r drawn with counter row r."""
    cdef Py_ssize_t n = activation.shape[0], m = activation.shape[1], r
    if bias.shape[0] != m:
        raise ValueError(f"bias has {bias.shape[0]} entries but activation has {m} columns")
    cdef uint32_t step_word = check_counters(n, step, 1, stream, phase)
    cdef uint32_t key_words[2]
    dtype = np.float32 if floating is float else np.float64
    proba_arr = np.array(activation, dtype=dtype, copy=True)
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
    if bias.shape[0] != m:
        raise ValueError(f"bias has {bias.shape[0]} entries but activation has {m} columns")
    cdef uint32_t step_word = check_counters(n, step, 1, stream, phase)
    cdef uint32_t key_words[2]
    dtype = np.float32 if floating is float else np.float64
    out_arr = np.array(activation, dtype=dtype, copy=True)
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

# All chains go through each GEMM together and the work is split into blocks
# of hidden or visible units (widths from unit_block: functions of the layer
# sizes and n_chains, never of the thread count), as in training.  Splitting
# the chains instead made every block re-pack all of W for a few rows: the
# packing cost about as much as the multiply (perf, 784 x 500, 50-row blocks).

cdef inline floating ais_increment(floating p, floating z) noexcept nogil:
    """-log1p(p * expm1(z)) for the hidden part of an AIS log-weight increment.

    Most temperatures of the Salakhutdinov-Murray schedule have |z| tiny
    (z = -(beta_k - beta_{k-1}) x): there, degree-4 Taylor series of expm1 and
    log1p are exact to far below float rounding (|z|, |p expm1(z)| < 2^-7:
    relative error < 3e-12) and much cheaper than two libm calls."""
    cdef floating e, y
    if z < <floating>0.0078125 and z > <floating>-0.0078125:
        e = z * (1 + z * (<floating>0.5 + z * (<floating>(1.0 / 6) + z * <floating>(1.0 / 24))))
        y = p * e
        return -(y * (1 - y * (<floating>0.5 - y * (<floating>(1.0 / 3) - y * <floating>0.25))))
    if floating is float:
        return -log1pf(p * expm1f(z))
    else:
        return -log1p(p * expm1(z))


cdef void ais_chains(const floating *W, const floating *vbias, const floating *hbias,
                     const floating *base_vbias, const double *dvb, const double *betas,
                     Py_ssize_t K, Py_ssize_t n, int D, int H, floating *v, floating *h,
                     floating *hb_s, floating *vb_s, double *partial, double *logw,
                     const uint32_t *key, int n_threads, bint gauss,
                     bint start_given, Py_ssize_t k_first, Py_ssize_t k_last) noexcept nogil:
    """Temperatures k_first..k_last (of 1..K) for all n chains (see
    _reference.ais_log_weights).  k_first == 1 starts the chains (a draw from
    the base-rate model unless ``start_given``, logw = 0); a later k_first
    continues from the v and logw the previous chunk left, so any split of
    1..K gives the same weights.

    W is never copied: the temperature enters as the GEMM alpha and as scaled
    bias vectors.  partial[blk * n + r] holds hidden block blk's share of row
    r's log-weight increment; rows add them in block order (deterministic).
    ``start_given``: v already holds the chains' start states (no base draw).
    A step down to beta = 0 (the end of a reverse run) takes its hidden input
    at the previous temperature, the only one that carries W v + c."""
    cdef Py_ssize_t hblock = unit_block(H, n), vblock = unit_block(D, n)
    cdef Py_ssize_t n_hblocks = (H + hblock - 1) // hblock
    cdef Py_ssize_t n_vblocks = (D + vblock - 1) // vblock
    cdef Py_ssize_t k, r, i, j, blk, j0, i0, nh, nv
    cdef double bk, delta, acc, abeta
    cdef floating a, p, ratio
    cdef floating *row_ptr
    cdef bint to_zero
    with parallel(num_threads=n_threads):
        if k_first == 1:
            for r in prange(n, schedule='static'):
                if not start_given:
                    for i in range(D):
                        v[r * D + i] = 0
                    visible_draw(gauss, v + r * D, base_vbias, D, 0, r, 0,
                                 counter_word3(streams.STREAM_AIS, 1), key)
                logw[r] = 0
        for k in range(k_first, k_last + 1):
            bk = betas[k]
            delta = bk - betas[k - 1]
            # softplus(0) - softplus(a) = log1p(p expm1(-a)) with a at beta_{k-1}
            to_zero = bk == 0 and delta != 0
            abeta = betas[k - 1] if to_zero else bk
            if to_zero:
                ratio = 1
            else:
                ratio = <floating>(delta / bk) if (delta != 0 and bk > 0) else 0
            # hidden input beta_k (W v + c), the increment's hidden part, the draw
            for blk in prange(n_hblocks, schedule='dynamic'):
                j0 = blk * hblock
                nh = H - j0
                if nh > hblock:
                    nh = hblock
                for j in range(j0, j0 + nh):
                    hb_s[j] = <floating>(abeta * <double>hbias[j])
                matmul_abt(<int>n, <int>nh, D, <floating>abeta, v, D, W + j0 * D, D, 0, h + j0, H)
                for r in range(n):
                    row_ptr = h + r * H
                    acc = 0
                    if ratio != 0:
                        for j in range(j0, j0 + nh):
                            a = row_ptr[j] + hb_s[j]
                            if floating is float:
                                p = fr_sigmoidf(a)
                            else:
                                p = fr_sigmoid(a)
                            acc = acc + <double>ais_increment(p, -ratio * a)
                    partial[blk * n + r] = -acc if to_zero else acc
                    if k < K:
                        bernoulli(row_ptr + j0, hb_s + j0, 1, row_ptr + j0, <int>nh, j0, r,
                                  <uint32_t>k, counter_word3(streams.STREAM_AIS, 0), key)
            # the increment: visible part (from v before the transition) + blocks in order
            for r in prange(n, schedule='static'):
                acc = 0
                for i in range(D):
                    acc = acc + <double>v[r * D + i] * dvb[i]
                acc = delta * acc
                for blk in range(n_hblocks):
                    acc = acc + partial[blk * n + r]
                logw[r] += acc
            if k < K:
                # Gibbs transition at beta_k: visible input (1-beta) b_A + beta (W^T h + b)
                for blk in prange(n_vblocks, schedule='dynamic'):
                    i0 = blk * vblock
                    nv = D - i0
                    if nv > vblock:
                        nv = vblock
                    for i in range(i0, i0 + nv):
                        vb_s[i] = <floating>((1 - bk) * <double>base_vbias[i]
                                             + bk * <double>vbias[i])
                    matmul_ab(<int>n, <int>nv, H, <floating>bk, h, H, W + i0, D, 0, v + i0, D)
                    for r in range(n):
                        row_ptr = v + r * D + i0
                        visible_draw(gauss, row_ptr, vb_s + i0, <int>nv, i0, r, <uint32_t>k,
                                     counter_word3(streams.STREAM_AIS, 1), key)


def ais_log_weights(const floating[:, ::1] W, const floating[::1] vbias,
                    const floating[::1] hbias, const floating[::1] base_vbias, betas,
                    Py_ssize_t n_chains, key, int n_threads, bint gaussian=False, start=None,
                    bint return_states=False):
    """AIS log weights (float64, one per chain) from the base-rate model with
    visible biases ``base_vbias`` to (W, vbias, hbias) along ``betas``
    (betas[0] = 0, last = 1).  Same draws and meaning as
    ``_reference.ais_log_weights``; bit-identical for any ``n_threads``.
    ``gaussian``: unit-variance Gaussian visible units (the weights then
    omit the constant -(||b||^2 - ||b_A||^2) / 2, see the reference).
    ``start`` (n_chains, D): start states instead of base draws (reverse AIS:
    ``betas`` from 1 down to 0); ``return_states``: also return the chains'
    final states."""
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], hbias.shape[0], base_vbias.shape[0],
               "base_vbias", n_threads)
    cdef double[::1] betas_v = _checked_betas(betas)
    if not 0 <= n_chains <= INT_LIMIT:
        raise ValueError(f"n_chains must be in [0, 2**31 - 1], got {n_chains}")
    # c1 = chain, c2 = temperature index
    check_counters(n_chains, 0, betas_v.shape[0], streams.STREAM_AIS, 1)
    cdef int H = W.shape[0], D = W.shape[1]
    cdef Py_ssize_t K = betas_v.shape[0] - 1
    cdef double[::1] dvb = (np.asarray(vbias, dtype=np.float64)
                            - np.asarray(base_vbias, dtype=np.float64))
    cdef uint32_t key_words[2]
    dtype = np.float32 if floating is float else np.float64
    logw_arr = np.zeros(n_chains, dtype=np.float64)
    v_arr = np.empty((n_chains, D), dtype=dtype)
    if start is not None:
        v_arr[...] = _checked_start(start, n_chains, D)
    if n_chains == 0:
        return (logw_arr, v_arr) if return_states else logw_arr
    cdef double[::1] logw = logw_arr
    cdef floating[::1] v = v_arr.reshape(-1)
    cdef floating[::1] h = np.empty(n_chains * H, dtype=dtype)
    cdef floating[::1] hb_s = np.empty(H, dtype=dtype)
    cdef floating[::1] vb_s = np.empty(D, dtype=dtype)
    cdef double[::1] partial = np.empty(n_chains * H, dtype=np.float64)
    key_words[0], key_words[1] = check_key(key)
    cdef Py_ssize_t k_first = 1, k_last
    cdef Py_ssize_t chunk = _fixed_chunk or 1
    cdef bint start_given = start is not None
    while True:
        k_last = K if K - k_first < chunk else k_first + chunk - 1
        started = perf_counter()
        with nogil:
            ais_chains(&W[0, 0], &vbias[0], &hbias[0], &base_vbias[0], &dvb[0], &betas_v[0],
                       K, n_chains, D, H, &v[0], &h[0], &hb_s[0], &vb_s[0], &partial[0],
                       &logw[0], key_words, n_threads, gaussian, start_given, k_first, k_last)
        if k_last >= K:
            break
        PyErr_CheckSignals()
        chunk = next_chunk(chunk, perf_counter() - started)
        k_first = k_last + 1
    return (logw_arr, v_arr) if return_states else logw_arr


def _checked_betas(betas):
    """betas as float64; a run may end at 0 (reverse AIS) but not pass it:
    a step to 0 takes its hidden input at the previous temperature, which is
    right for the increment but not for a transition after it."""
    arr = np.ascontiguousarray(betas, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] < 1:
        raise ValueError(f"betas must be a 1-D array of temperatures, got shape {arr.shape}")
    last = arr.shape[0] - 1     # (no negative indices: wraparound is off)
    if last > 1 and np.any((arr[1:last] == 0) & (arr[0:last - 1] != 0)):
        raise ValueError("betas may reach 0 after a positive temperature only at its end")
    return arr


def _checked_start(start, n_chains, D):
    arr = np.asarray(start)
    if arr.shape != (n_chains, D):
        raise ValueError(f"start must have shape ({n_chains}, {D}), got {arr.shape}")
    return arr
