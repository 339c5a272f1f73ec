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


# Tiles of the training kernel (cd_minibatches in _gibbs.pyx).  The sampling
# GEMMs run over 2-D tiles (rows of the minibatch x units) and the weight
# gradient over 2-D tiles (hidden units x visible units), so that a layer
# can give many work items, not 2, to many cores.  Tile sizes are functions
# of the problem and of the machine (below), never of the thread count: a
# tile's result is the same whichever thread computes it.
#
# The sizes (bench_block_span.py; benchmarks/README.md, issue 19).  Every
# tile GEMM re-packs its operands (OpenBLAS packs both per call), so finer
# tiles cost packing and narrower BLAS calls:
# - rows: at most TRAIN_ROW_TILE per sampling tile (batches up to 128 are
#   one row tile; bigger ones are split into equal tiles, the W re-packing
#   then being amortised over >= 64 rows);
# - units: unit_block's width (narrower for small batches, whose tiles would
#   otherwise be tiny), capped at WIDE_UNIT_TILE on wide machines;
# - gradient: whole rows of W per tile, WIDE_GRAD_COLS visible units per
#   tile on wide machines.
# Two regimes, chosen by the machine (its CPU count), never by the thread
# count a fit asks for:
# - machines with fewer than WIDE_MACHINE_CPUS CPUs keep the 2-block
#   decomposition (unit_block's widths, whole rows of W): at 784 x 500,
#   batch 100, tiles of 128 units and 256 gradient columns made the CD-1
#   epoch 1.09x (1 thread) and 1.05x (2 threads) as long on 2 cores (60000
#   rows, median of 9 interleaved rounds, quiet machine, 2026-12-02), and
#   issue 19 allows no slowdown on 2 cores;
# - machines with WIDE_MACHINE_CPUS or more take those tiles: 4 hidden-phase,
#   7 visible-phase and 16 gradient tiles instead of 2, 4 and 2, so the
#   phases can feed 4, 7 and 16 cores instead of 2, 4 and 2, for those 5-9%
#   more work per thread.  Finer still (50 rows x 64 units, fine enough for
#   16 cores in every phase) cost 1.16-1.35x on 2 cores (7 rounds, 20000
#   rows), so it is not the default; benchmarks/device_check.py times it on
#   a many-core machine.  The wide regime's scaling on many cores is not
#   measured yet (no such machine was lent).
# The regime is a property of the machine like its BLAS kernels (which also
# set the rounding): results are bit-identical for any n_jobs on one machine,
# and FASTRBM_TILE_CPUS=N (read at import) picks the regime of an N-CPU
# machine, to reproduce another machine's decomposition.
cdef Py_ssize_t TRAIN_ROW_TILE = 128
cdef Py_ssize_t TRAIN_UNIT_TILE = 1 << 30
cdef Py_ssize_t TRAIN_GRAD_COLS = 1 << 30
WIDE_MACHINE_CPUS = 4
cdef Py_ssize_t WIDE_UNIT_TILE = 128
cdef Py_ssize_t WIDE_GRAD_COLS = 256


def _machine_tile_cpus():
    """The CPU count that picks the tile regime: FASTRBM_TILE_CPUS when set
    (a positive integer), else ``os.cpu_count()`` (the machine's, not this
    process's affinity mask: a fit pinned to fewer CPUs keeps the machine's
    decomposition)."""
    import os
    text = os.environ.get("FASTRBM_TILE_CPUS", "").strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(f"FASTRBM_TILE_CPUS must be a positive integer, got {text!r}")
        return value
    return os.cpu_count() or 1


cdef bint _wide_tiles = _machine_tile_cpus() >= WIDE_MACHINE_CPUS


def _set_wide_tiles(on):
    """Force the tile regime: True (a wide machine's), False (a small
    machine's) or None (this machine's, as at import); returns the previous
    setting as a bool.  For tests and benchmarks: results change by rounding."""
    global _wide_tiles
    previous = bool(_wide_tiles)
    _wide_tiles = _machine_tile_cpus() >= WIDE_MACHINE_CPUS if on is None else bool(on)
    return previous


def wide_tiles():
    """Whether the training kernel uses the tiles of a machine with many
    CPUs (see the comment above ``WIDE_MACHINE_CPUS``)."""
    return bool(_wide_tiles)


cdef Py_ssize_t _row_tile_override = 0
cdef Py_ssize_t _unit_tile_override = 0
cdef Py_ssize_t _grad_cols_override = 0


def _set_train_tiles(Py_ssize_t rows=0, Py_ssize_t units=0, Py_ssize_t grad_cols=0):
    """Force the training tiles (0: automatic); returns the previous setting.

    For benchmarking the decomposition only (results then change by
    rounding, as they would for another layer size).  ``rows``: minibatch
    rows per sampling tile (>= the batch: whole minibatch); ``units``: units
    per tile (a multiple of 4, or -1: ``unit_block``, the 2-block rule used
    before 2-D tiles); ``grad_cols``: visible units per tile of the weight
    gradient (>= n_features: whole rows of W).  ``(1 << 30, -1, 1 << 30)``
    is the decomposition of fastrbm 0.x before the tiles (issue 19).
    """
    global _row_tile_override, _unit_tile_override, _grad_cols_override
    if rows < 0 or grad_cols < 0 or units < -1 or (units > 0 and units % 4):
        raise ValueError("rows, grad_cols >= 0; units -1, 0 or a positive multiple of 4")
    previous = (_row_tile_override, _unit_tile_override, _grad_cols_override)
    _row_tile_override, _unit_tile_override, _grad_cols_override = rows, units, grad_cols
    return previous


cdef Py_ssize_t train_row_tile(Py_ssize_t batch_size) noexcept nogil:
    """Minibatch rows per tile of the sampling GEMMs in training."""
    cdef Py_ssize_t n_tiles = (batch_size + TRAIN_ROW_TILE - 1) // TRAIN_ROW_TILE
    if _row_tile_override > 0:
        return _row_tile_override
    # equal tiles (a batch of 130 gives 2 x 65 rows, not 128 + 2)
    return (batch_size + n_tiles - 1) // n_tiles


cdef Py_ssize_t train_unit_tile(Py_ssize_t dim, Py_ssize_t batch_size) noexcept nogil:
    """Units per tile in training: a multiple of 4 (one Philox block holds 4
    columns, and Gaussian column pairs never straddle tiles)."""
    cdef Py_ssize_t width = unit_block(dim, batch_size)
    if _unit_tile_override == -1:
        return width
    if _unit_tile_override > 0:
        return _unit_tile_override
    cdef Py_ssize_t cap = WIDE_UNIT_TILE if _wide_tiles else TRAIN_UNIT_TILE
    return width if width < cap else cap


cdef Py_ssize_t train_grad_cols(Py_ssize_t dim, Py_ssize_t batch_size) noexcept nogil:
    """Visible units per tile of the weight gradient GEMM in training."""
    if _grad_cols_override > 0:
        return _grad_cols_override
    return WIDE_GRAD_COLS if _wide_tiles else TRAIN_GRAD_COLS


def train_tiles(Py_ssize_t n_features, Py_ssize_t n_components, Py_ssize_t batch_size):
    """The training tiles for a layer: dict of rows (per sampling tile),
    hidden and visible units per tile, and visible units per gradient tile
    (benchmarks and tests; the kernel asks the same functions)."""
    return {"rows": min(train_row_tile(batch_size), batch_size),
            "hidden_units": min(train_unit_tile(n_components, batch_size), n_components),
            "visible_units": min(train_unit_tile(n_features, batch_size), n_features),
            "grad_cols": min(train_grad_cols(n_features, batch_size), n_features)}


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
