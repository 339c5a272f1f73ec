"""Cost of a parallel-tempering sweep against plain Gibbs sweeps.

Usage::

    python benchmarks/bench_tempering.py [--hidden 500] [--chains 100] [--replicas 10]
                                         [--sweeps 20] [--rounds 3] [--n-jobs N]

A 784-H BernoulliRBM with random weights (float32; the cost does not depend
on the values), ``--chains`` chains.  Contenders, interleaved, median of
``--rounds``: ``fastrbm.sampling.parallel_tempering`` with R replicas for S
sweeps, and ``model.gibbs`` of the same chains for R x S steps (what the
replicas' Gibbs steps alone cost).  The ratio is what a PT sweep costs per
replica-sweep; issue 17 asks for at most 1.2.
"""
import argparse
import time

import numpy as np

from fastrbm import BernoulliRBM
from fastrbm.sampling import parallel_tempering


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--sweeps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    model = BernoulliRBM(n_components=args.hidden, n_iter=0, random_state=0,
                         n_jobs=args.n_jobs, dtype=np.float32)
    model.fit(rng.random((2, 784)) < 0.5)
    model.components_[:] = rng.normal(0, 0.05, model.components_.shape)
    model._visible_means = np.full(784, 0.2)
    start = (rng.random((args.chains, 784)) < 0.2).astype(np.float32)
    times = {"pt": [], "gibbs": []}
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        parallel_tempering(model, n_sweeps=args.sweeps, n_temperatures=args.replicas,
                           start=start, random_state=1)
        times["pt"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.gibbs(start, k=args.replicas * args.sweeps)
        times["gibbs"].append(time.perf_counter() - t0)
    pt, gibbs = np.median(times["pt"]), np.median(times["gibbs"])
    print(f"784-{args.hidden}, {args.chains} chains, R={args.replicas}, {args.sweeps} sweeps, "
          f"n_jobs={args.n_jobs}, median of {args.rounds}")
    print(f"parallel tempering: {pt:.3f} s; Gibbs, R x sweeps steps: {gibbs:.3f} s; "
          f"ratio {pt / gibbs:.2f}")


if __name__ == "__main__":
    main()
