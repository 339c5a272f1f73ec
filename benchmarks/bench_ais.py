"""AIS speed: 100 chains x the Salakhutdinov-Murray schedule on a 784-500 RBM.

Usage::

    python benchmarks/bench_ais.py [--chains 100] [--threads 2] [--prefix 300] [--repeats 3]

1. The full run: ``evaluation.log_partition_ais`` with the default schedule
   (14,501 temperatures), float32, ``--threads`` OpenMP threads, forward
   chains only (``reverse=False``; the target is under 60 s), then the
   default two-sided run (forward + reverse chains + certified bound).
2. Ratios on a prefix of the schedule (``--prefix`` temperatures), measured
   in one run, interleaved, median of ``--repeats``: the compiled kernel
   against the NumPy reference (``_reference.ais_log_weights``) and against
   the GEMM floor (the two GEMMs per temperature in NumPy, single-threaded
   BLAS, no sampling).

The model is random (weights N(0, 0.05^2), biases N(-1, 1)): the kernel's cost
does not depend on the parameter values.
"""
import argparse
import statistics
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from fastrbm import BernoulliRBM, _cpu, evaluation
from fastrbm import _reference as ref


def make_model(threads):
    rng = np.random.default_rng(0)
    D, H = 784, 500
    model = BernoulliRBM(n_components=H, n_iter=0, random_state=0, n_jobs=threads)
    model.fit((rng.random((100, D)) < 0.3).astype(np.float32))
    model.components_ = rng.normal(0, 0.05, (H, D)).astype(np.float32)
    model.intercept_visible_ = rng.normal(-1, 1, D).astype(np.float32)
    model.intercept_hidden_ = rng.normal(-1, 1, H).astype(np.float32)
    return model


def gemm_floor(W, n_chains, n_temps):
    rng = np.random.default_rng(1)
    v = (rng.random((n_chains, W.shape[1])) < 0.3).astype(np.float32)
    h = (rng.random((n_chains, W.shape[0])) < 0.3).astype(np.float32)
    for _ in range(n_temps):
        v @ W.T
        h @ W


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prefix", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-full", action="store_true")
    args = parser.parse_args()
    model = make_model(args.threads)
    W, vb, hb = model._params()
    base = evaluation._base_visible_bias(evaluation.bind(model), None).astype(np.float32)
    key = np.array([1, 2], np.uint32)
    betas = evaluation.ais_schedule()[:args.prefix]
    betas = betas / betas[-1]

    times = {"kernel": [], "reference": [], "gemm floor": []}
    with threadpool_limits(1, user_api="blas"):
        for _ in range(args.repeats):
            t = time.perf_counter()
            _cpu.ais_log_weights(W, vb, hb, base, betas, args.chains, key, args.threads)
            times["kernel"].append(time.perf_counter() - t)
            t = time.perf_counter()
            ref.ais_log_weights(W, vb, hb, base, betas, args.chains, key)
            times["reference"].append(time.perf_counter() - t)
            t = time.perf_counter()
            gemm_floor(W, args.chains, len(betas) - 1)
            times["gemm floor"].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"prefix of {args.prefix} temperatures, {args.chains} chains, 784-500 float32, "
          f"median of {args.repeats}:")
    for name, value in med.items():
        print(f"  {name:12s} {value:8.3f} s   kernel speed-up x{value / med['kernel']:.2f}")

    if not args.skip_full:
        for reverse in (False, True):
            t = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", evaluation.AISWarning)
                result = evaluation.log_partition_ais(model, n_chains=args.chains,
                                                      random_state=0, reverse=reverse)
            elapsed = time.perf_counter() - t
            print(f"full schedule, {'forward + reverse' if reverse else 'forward only'}: "
                  f"{result.n_temperatures} temperatures x {args.chains} chains, "
                  f"{args.threads} threads: {elapsed:.1f} s (log Z = {result.log_z:.3f}, "
                  f"reverse {result.log_z_reverse:.3f}, certified >= "
                  f"{result.log_z_certified:.3f}, 95% bracket [{result.log_z_low:.3f}, "
                  f"{result.log_z_high:.3f}], {len(caught)} warnings)")


if __name__ == "__main__":
    main()
