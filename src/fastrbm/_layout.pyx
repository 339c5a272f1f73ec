# cython: language_level=3, cdivision=True
# cython: initializedcheck=False, nonecheck=False, embedsignature=True
"""How the CPU kernels split their work, and the thread counts they get.

Parallel decomposition: every OpenMP loop runs over *fixed-size* blocks (of
hidden units, visible units or rows) whose size never depends on the thread
count, and each block is computed by one BLAS call plus the fused sampler.
So a block's result is the same whichever thread computes it, and results are
bit-identical for any ``n_threads``.  BLAS must be single-threaded while these
kernels run (the caller, ``_backend``, arranges that): one party owns the cores.
"""

cdef extern from "_kernels.h" nogil:
    int fr_openmp_enabled()
    int fr_max_threads()


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


cdef Py_ssize_t first_chunk() noexcept:
    """The first chunk's length: the fixed setting, else one step."""
    return _fixed_chunk or 1


cdef Py_ssize_t next_chunk(Py_ssize_t chunk, double seconds):
    """The next chunk's length after one of ``chunk`` steps took ``seconds``."""
    if _fixed_chunk:
        return _fixed_chunk
    if seconds < CHUNK_SECONDS / 2 and chunk < (1 << 30):
        return 2 * chunk
    if seconds > 2 * CHUNK_SECONDS and chunk > 1:
        return chunk // 2
    return chunk


cdef Py_ssize_t unit_block(Py_ssize_t dim, Py_ssize_t batch_size) noexcept nogil:
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


def openmp_enabled():
    """Whether the CPU kernels were compiled with OpenMP (setup.py gives every
    extension the same flags)."""
    return bool(fr_openmp_enabled())


def max_threads():
    """Threads an OpenMP region gets by default (OMP_NUM_THREADS, threadpoolctl)."""
    return fr_max_threads()
