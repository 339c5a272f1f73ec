"""CD-1 epoch time against the training decomposition (tiles) and the thread count.

Usage::

    python benchmarks/bench_block_span.py --n-samples 60000 --batch-size 100 \\
        --tiles legacy,auto,32:64:256 --threads 1,2,4,8,16 --repeats 3

Data: Fashion-MNIST train images as float32 in [0, 1] (synthetic data of the
same shape without the file, see ``datasets.py``), 784 visible, 500 hidden
units, CD-1, float32, one epoch of ``model._run_updates`` (``fit``'s epoch
minus its monitoring).

``--tiles``: decompositions of the training kernel to compare, forced with
``fastrbm._layout._set_train_tiles``: ``auto`` (the default rule: this
machine's tile regime), ``small`` / ``wide`` (the regime of a machine with
fewer than 4 CPUs / with 4 or more, ``_layout._set_wide_tiles``), ``legacy``
(the decomposition before 2-D tiles: the whole minibatch per sampling tile,
``unit_block`` widths, whole rows of W per gradient tile), or
``rows:units:grad_cols`` (0: automatic; units -1: ``unit_block``).
``--spans`` (optional) adds legacy decompositions with the span of
``unit_block`` forced (``_layout._set_block_span``), as this script did
before the tiles.

``--threads``: thread counts; counts above ``os.cpu_count()`` are skipped
(and the script says so).  Each round runs every (tiles, threads) contender
and the GEMM floor at every thread count once, in a rotated order (so slow
drift of a shared machine hits all alike); medians over the rounds are
reported with every round's time.  The floor is ``bench_cd_epoch``'s
"5 GEMMs" floor (the CD-1 GEMMs alone in NumPy, no sampling or update) with
BLAS at that thread count.  Reported per contender: the median, its ratio to
the floor at the same thread count, the efficiency against one thread
(``t(1) / (T t(T))``, the same tiles) and against the floor's own scaling
(``floor(T) / t(T)`` divided by ``floor(1) / t(1)``: 1.0 means the kernel
scales as well as multithreaded BLAS does on the same GEMMs).
"""
import argparse
import contextlib
import os
import platform
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cd_epoch import make_floor  # noqa: E402
from datasets import load_training_data, to_float32  # noqa: E402

import fastrbm._backend as backend  # noqa: E402
from fastrbm import BernoulliRBM, _layout  # noqa: E402

# (rows, units, gradient columns, wide regime: True / False / None = the machine's)
LEGACY = (1 << 30, -1, 1 << 30, None)
REGIMES = {"auto": None, "small": False, "wide": True}


def parse_tiles(spec):
    """'auto' | 'small' | 'wide' | 'legacy' | 'rows:units:grad_cols' -> (label, tuple)."""
    if spec in REGIMES:
        return spec, (0, 0, 0, REGIMES[spec])
    if spec == "legacy":
        return spec, LEGACY
    rows, units, cols = (int(x) for x in spec.split(":"))
    return spec, (rows, units, cols, None)


@contextlib.contextmanager
def forced_tiles(tiles):
    """Run the block with the training tiles of a parse_tiles tuple."""
    previous_tiles = _layout._set_train_tiles(*tiles[:3])
    previous_regime = _layout._set_wide_tiles(tiles[3])
    try:
        yield
    finally:
        _layout._set_train_tiles(*previous_tiles)
        _layout._set_wide_tiles(previous_regime)


def thread_counts(requested, available=None):
    """(kept, skipped): the requested counts the machine has, and the rest."""
    available = available or os.cpu_count() or 1
    kept = [t for t in requested if t <= available]
    return kept, [t for t in requested if t > available]


def make_epoch(X, batch, threads, tiles, span):
    """A run(rows) timing one epoch with the given tiles (and unit_block span)."""
    def run(rows):
        # fresh parameters each round: every round times the same epoch
        fresh = BernoulliRBM(n_components=500, batch_size=batch, n_iter=0, method="cd",
                             learning_rate=0.05, random_state=0, n_jobs=threads).fit(X)
        X_checked = fresh._validate(X, reset=False)
        workspace = fresh._workspace(X_checked)
        order = np.arange(rows, dtype=np.intp)
        previous_span = _layout._set_block_span(span)
        try:
            with forced_tiles(tiles):
                start = time.perf_counter()
                fresh._run_updates(X_checked, order, workspace, 0)
                return time.perf_counter() - start
        finally:
            _layout._set_block_span(previous_span)
    return run


def make_floor_at(X, batch, threads):
    floor = make_floor(X, batch, stacked=False)

    def run(rows):
        with threadpool_limits(threads):
            return floor(rows)
    return run


def sweep(X, batch, tile_specs, spans, threads, repeats, floor_threads=None, log=print):
    """Interleaved rounds; returns {(label, threads): [seconds...]} with the
    floor under label 'floor' (at ``floor_threads``, default: every count)."""
    contenders = []
    for t in floor_threads if floor_threads is not None else threads:
        contenders.append((("floor", t), make_floor_at(X, batch, t)))
    for t in threads:
        for label, tiles in tile_specs:
            contenders.append(((label, t), make_epoch(X, batch, t, tiles, 0)))
        for span in spans:
            contenders.append(((f"legacy span {span}", t), make_epoch(X, batch, t, LEGACY, span)))
    times = {key: [] for key, _ in contenders}
    n = X.shape[0]
    for rnd in range(repeats):
        k = rnd % len(contenders)
        for key, run in contenders[k:] + contenders[:k]:
            times[key].append(run(n))
        log(f"round {rnd + 1}/{repeats} done")
    return times


def report(times, threads, log=print):
    """Print medians, ratios, efficiencies; return the rows.

    ``/floor``: median over the floor's median at the same thread count (or
    the nearest count it ran at, printed); ``/first``: the median over the
    rounds of this contender's time divided by the first tiles' time at the
    same thread count in the same round (robust to drift between rounds).
    """
    nan = float("nan")
    med = {key: statistics.median(v) for key, v in times.items()}
    labels = list(dict.fromkeys(label for label, t in times if label != "floor"))
    floors = sorted(t for label, t in times if label == "floor")
    rows = []
    log(f"{'contender':<24} {'thr':>3} {'median s':>9} {'/floor':>7} {'/first':>7} "
        f"{'eff vs 1':>8} {'eff vs floor':>12}  rounds")
    for t in threads:
        ft = min(floors, key=lambda f: abs(f - t)) if floors else None
        if ft == t:
            floor = med[("floor", t)]
            floor_eff1 = med[("floor", 1)] / (t * floor) if 1 in floors else nan
            log(f"{'floor (5 GEMMs)':<24} {t:>3} {floor:>9.3f} {'':>7} {'':>7} "
                f"{floor_eff1:>8.2f} {'':>12}  "
                f"{', '.join(f'{x:.3f}' for x in times[('floor', t)])}")
        for label in labels:
            m = med[(label, t)]
            ratio = m / med[("floor", ft)] if ft is not None else nan
            first = statistics.median(a / b for a, b in zip(times[(label, t)],
                                                            times[(labels[0], t)]))
            eff1 = med[(label, 1)] / (t * m) if 1 in threads else nan
            eff_floor = ((med[("floor", t)] / m) / (med[("floor", 1)] / med[(label, 1)])
                         if 1 in threads and 1 in floors and t in floors else nan)
            rows.append(dict(label=label, threads=t, median=m, ratio=ratio, first=first,
                             eff1=eff1, eff_floor=eff_floor))
            note = f"  (floor at {ft} threads)" if ft not in (None, t) else ""
            log(f"{label:<24} {t:>3} {m:>9.3f} {ratio:>7.2f} {first:>7.2f} {eff1:>8.2f} "
                f"{eff_floor:>12.2f}  {', '.join(f'{x:.3f}' for x in times[(label, t)])}"
                f"{note}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=60000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--tiles", default="legacy,auto")
    parser.add_argument("--spans", default="", help="legacy decompositions with this "
                        "unit_block span forced (comma-separated)")
    parser.add_argument("--threads", default="1,2,4,8,16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--floor-threads", default="same",
                        help="thread counts of the GEMM floor: 'same' (every count "
                        "of --threads), 'none', or a comma-separated list")
    args = parser.parse_args(argv)
    backend.MIN_WORK_PER_THREAD = 1  # the thread count asked for, even for small batches
    requested = [int(t) for t in args.threads.split(",")]
    threads, skipped = thread_counts(requested)
    X_u8, description = load_training_data(args.n_samples)
    X = to_float32(X_u8)
    tile_specs = [parse_tiles(s) for s in args.tiles.split(",") if s]
    spans = [int(s) for s in args.spans.split(",") if s]
    print(f"data: {description}; batch {args.batch_size}, 500 hidden, CD-1 float32; "
          f"{platform.processor() or platform.machine()}, os.cpu_count() = {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f}; this machine's tile regime: "
          f"{'wide' if _layout.wide_tiles() else 'small'}")
    if skipped:
        print(f"skipped thread counts {skipped}: this machine has {os.cpu_count()} CPUs")
    for label, tiles in tile_specs:
        with forced_tiles(tiles):
            print(f"tiles {label}: {_layout.train_tiles(784, 500, args.batch_size)}")
    if args.floor_threads == "same":
        floor_threads = threads
    elif args.floor_threads == "none":
        floor_threads = []
    else:
        floor_threads = thread_counts([int(t) for t in args.floor_threads.split(",")])[0]
    times = sweep(X, args.batch_size, tile_specs, spans, threads, args.repeats,
                  floor_threads)
    report(times, threads)


if __name__ == "__main__":
    main()
