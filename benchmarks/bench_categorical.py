"""Time one training epoch of a categorical (Potts) RBM: the compiled kernels
against their GEMM floor and the NumPy reference.

Usage::

    python benchmarks/bench_categorical.py --repeats 3 --threads 2
    python benchmarks/bench_categorical.py --centered --repeats 9 --threads 2
    python benchmarks/bench_categorical.py --bound --repeats 7

``--centered`` times centred training (issue 17) instead: plain and
centred epochs of the same problem (CD-1 on ``--threads`` and on 1 thread,
PCD-10), interleaved, and the centred / plain ratio of each pair's medians.

Configuration (Kunitz-sized, issue 16): random codes 11819 x 53, q = 21,
100 hidden units, batch 100, float32, one epoch of CD-1 and one of PCD-10
(100 persistent chains).  Contenders run interleaved: round r runs every
contender once, starting at contender r, so drift of a loaded machine hits
all alike; reported are the median over the rounds and ratios of medians.

What each timing covers:

* ``fastrbm``: ``_cpu.cd_update`` over one epoch (``--threads`` OpenMP
  threads), parameters and workspace set up untimed.
* ``reference``: ``_reference.cd_update`` (NumPy) on the same data; CD-1
  only, on ``n / --reference-fraction`` rows, the time scaled back up.
* ``floor``: the one dense GEMM per Gibbs step that no implementation
  avoids, the hidden-to-visible logits h (B, H) x W (H, L q), timed alone in
  NumPy with one BLAS thread into a preallocated output: one per batch for
  CD-1, ten per batch for PCD-10.

``--bound`` times, instead, what the floor leaves out but the issue's own
draw cannot skip: the inverse-CDF draw from one uniform per site needs the
softmax's normaliser, so every Gibbs step takes the exp of all B x L q
logits.  NumPy's exp (SIMD, AVX-512 where the CPU has it) over the logits
is timed against the logits GEMM, both with one BLAS thread, interleaved
(CPU time, medians); (GEMM + exp) / GEMM is a lower bound of epoch / floor
for any implementation of that draw (it leaves out the site maxima, the
running sums, the uniforms, the hidden fields and the gradient).

Where the epoch's time goes is measured with perf, not here (see
benchmarks/README.md, "Categorical (Potts) visible units").
"""
import argparse
import os
import platform
import statistics
import time
from types import SimpleNamespace

import numpy as np
from threadpoolctl import threadpool_limits

from fastrbm import _backend, _cpu, _reference

N_ROWS, N_SITES, Q, N_HIDDEN, BATCH = 11819, 53, 21, 100, 100
KEY = np.array([7, 11], dtype=np.uint32)


def config(k, persistent, centered=False):
    return SimpleNamespace(k=k, persistent=persistent, learning_rate=0.05, momentum=0.5,
                           weight_decay=1e-4, l1=0.0, sparsity_target=0.1, sparsity_cost=0.0,
                           sparsity_decay=0.9, categories=Q, l1_squared=0.0,
                           zero_sum_gauge=False, centered=centered, centering_rate=0.01)


def setup(n_rows, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, Q, (n_rows, N_SITES)).astype(np.uint8)
    W = rng.normal(0, 0.01, (N_HIDDEN, N_SITES * Q)).astype(dtype)
    vbias = np.zeros(N_SITES * Q, dtype)
    hbias = np.zeros(N_HIDDEN, dtype)
    return X, W, vbias, hbias


def epoch(engine, k, persistent, n_rows, n_threads, centered=False):
    """A function that runs one epoch (timed) after an untimed setup."""
    X, W, vbias, hbias = setup(n_rows)
    # centred: the offsets as a fit starts them (site frequencies, 0.5)
    offsets = ((np.full(N_SITES * Q, 1.0 / Q, np.float32), np.full(N_HIDDEN, 0.5, np.float32))
               if centered else None)
    chains = np.zeros((BATCH, N_HIDDEN), np.float32) if persistent else None
    velocity = (np.zeros_like(W), np.zeros_like(vbias), np.zeros_like(hbias))
    activity = np.full(N_HIDDEN, 0.1, np.float32)
    workspace = engine.make_workspace(N_SITES * Q, N_HIDDEN, BATCH, np.float32)
    order = np.random.default_rng(1).permutation(n_rows).astype(np.intp)
    cfg = config(k, persistent, centered)

    def run():
        # BLAS on one thread inside the OpenMP kernels, as the estimators run them
        with _backend.kernel_threads():
            engine.cd_update(X, order, BATCH, W, vbias, hbias, chains, *velocity, activity,
                             workspace, cfg, KEY, 0, n_threads, offsets=offsets)
    return run


def floor(gemms_per_batch, n_rows):
    """The logits GEMMs of one epoch alone, NumPy, one BLAS thread."""
    rng = np.random.default_rng(2)
    h = (rng.random((BATCH, N_HIDDEN)) < 0.5).astype(np.float32)
    W = rng.normal(0, 0.01, (N_HIDDEN, N_SITES * Q)).astype(np.float32)
    out = np.empty((BATCH, N_SITES * Q), np.float32)
    n_gemms = gemms_per_batch * ((n_rows + BATCH - 1) // BATCH)

    def run():
        with threadpool_limits(1):
            for _ in range(n_gemms):
                np.matmul(h, W, out=out)
    return run


def bound_main(args):
    """The exp of every logit against the logits GEMM (see the module text)."""
    rng = np.random.default_rng(2)
    h = (rng.random((BATCH, N_HIDDEN)) < 0.5).astype(np.float32)
    W = rng.normal(0, 0.01, (N_HIDDEN, N_SITES * Q)).astype(np.float32)
    logits = np.empty((BATCH, N_SITES * Q), np.float32)
    exps = np.empty_like(logits)
    n_calls = 10 * ((N_ROWS + BATCH - 1) // BATCH)     # the PCD-10 epoch's count

    def gemm():
        for _ in range(n_calls):
            np.matmul(h, W, out=logits)

    def exp():
        for _ in range(n_calls):
            np.exp(logits, out=exps)
    times = {"logits GEMM": [], "exp of the logits": []}
    with threadpool_limits(1):
        gemm()                                      # warm up, and real logits for exp
        for _ in range(args.repeats):
            for name, run in (("logits GEMM", gemm), ("exp of the logits", exp)):
                started = time.process_time()
                run()
                times[name].append(time.process_time() - started)
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"# lower bound of the categorical draw: {n_calls} calls each of ({BATCH}, "
          f"{N_HIDDEN}) x ({N_HIDDEN}, {N_SITES * Q}) and of exp over ({BATCH}, {N_SITES * Q}) "
          f"float32, one thread, CPU time, median of {args.repeats} interleaved rounds; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    for name, t in times.items():
        print(f"{name:20s} {fmt(median[name]):>10s}   rounds: {', '.join(fmt(x) for x in t)}")
    ratio = median["exp of the logits"] / median["logits GEMM"]
    print(f"exp / GEMM = {ratio:.2f}: epoch / floor >= {1 + ratio:.2f} for any inverse-CDF "
          f"draw that takes the exp of every logit")


def timed(run):
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def fmt(seconds):
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.3f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reference-fraction", type=int, default=10,
                        help="the reference runs on n / this many rows, scaled back up")
    parser.add_argument("--centered", action="store_true",
                        help="time plain against centred epochs (CD-1, PCD-10) instead")
    parser.add_argument("--bound", action="store_true",
                        help="time the exp of every logit against the logits GEMM instead")
    args = parser.parse_args()
    if args.centered:
        return centred_main(args)
    if args.bound:
        return bound_main(args)
    n_ref = N_ROWS // args.reference_fraction
    scale = N_ROWS / n_ref
    contenders = {
        "fastrbm CD-1": (lambda: epoch(_cpu, 1, False, N_ROWS, args.threads), 1),
        "fastrbm CD-1 (1 thread)": (lambda: epoch(_cpu, 1, False, N_ROWS, 1), 1),
        "floor CD-1": (lambda: floor(1, N_ROWS), 1),
        "fastrbm PCD-10": (lambda: epoch(_cpu, 10, True, N_ROWS, args.threads), 1),
        "floor PCD-10": (lambda: floor(10, N_ROWS), 1),
        "reference CD-1": (lambda: epoch(_reference, 1, False, n_ref, 1), scale),
    }
    names = list(contenders)
    times = {name: [] for name in names}
    for r in range(args.repeats):
        for i in range(len(names)):
            name = names[(r + i) % len(names)]
            make, factor = contenders[name]
            run = make()
            times[name].append(timed(run) * factor)
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"# categorical epoch: {N_ROWS} x {N_SITES} codes, q = {Q}, {N_HIDDEN} hidden, "
          f"batch {BATCH}, float32; threads {args.threads}; {platform.processor() or ''} "
          f"{os.cpu_count()} CPUs; median of {args.repeats} interleaved rounds")
    for name in names:
        rounds = ", ".join(fmt(t) for t in times[name])
        extra = f" (scaled from {n_ref} rows)" if name.startswith("reference") else ""
        print(f"{name:26s} {fmt(median[name]):>10s}   rounds: {rounds}{extra}")
    print(f"CD-1   fastrbm / floor     = {median['fastrbm CD-1'] / median['floor CD-1']:.2f}")
    print(f"PCD-10 fastrbm / floor     = "
          f"{median['fastrbm PCD-10'] / median['floor PCD-10']:.2f}")
    print(f"CD-1   reference / fastrbm = "
          f"{median['reference CD-1'] / median['fastrbm CD-1']:.1f}")
    print(f"CD-1   1 thread / {args.threads} threads = "
          f"{median['fastrbm CD-1 (1 thread)'] / median['fastrbm CD-1']:.2f}")


def centred_main(args):
    """Plain against centred epochs, interleaved; ratios of medians."""
    pairs = {"CD-1": (1, False, args.threads), "CD-1 (1 thread)": (1, False, 1),
             "PCD-10": (10, True, args.threads)}
    contenders = {}
    for label, (k, persistent, threads) in pairs.items():
        for centered in (False, True):
            name = f"{'centred' if centered else 'plain'} {label}"
            contenders[name] = (lambda k=k, p=persistent, t=threads, c=centered:
                                epoch(_cpu, k, p, N_ROWS, t, centered=c))
    names = list(contenders)
    times = {name: [] for name in names}
    for r in range(args.repeats):
        for i in range(len(names)):
            name = names[(r + i) % len(names)]
            run = contenders[name]()
            times[name].append(timed(run))
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"# categorical epoch, plain vs centred: {N_ROWS} x {N_SITES} codes, q = {Q}, "
          f"{N_HIDDEN} hidden, batch {BATCH}, float32; threads {args.threads}; "
          f"{platform.processor() or ''} {os.cpu_count()} CPUs; median of {args.repeats} "
          f"interleaved rounds")
    for name in names:
        rounds = ", ".join(fmt(t) for t in times[name])
        print(f"{name:26s} {fmt(median[name]):>10s}   rounds: {rounds}")
    for label in pairs:
        print(f"{label:16s} centred / plain = "
              f"{median['centred ' + label] / median['plain ' + label]:.3f}")


if __name__ == "__main__":
    main()
