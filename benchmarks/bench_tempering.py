"""Cost of a parallel-tempering sweep against plain Gibbs sweeps, and of a
PT-PCD training epoch against a PCD epoch with as many Gibbs sweeps.

Usage::

    python benchmarks/bench_tempering.py [--hidden 500] [--chains 100] [--replicas 10]
                                         [--sweeps 20] [--rounds 3] [--n-jobs N]
                                         [--train-rows 2000] [--no-train] [--gaussian]
    python benchmarks/bench_tempering.py --categorical [--hidden 100] [--chains 100]
                                         [--replicas 10] [--sweeps 20] [--rounds 3]

A 784-H BernoulliRBM with random weights (float32; the cost does not depend
on the values), ``--chains`` chains.  Contenders, interleaved, median of
``--rounds``: ``fastrbm.sampling.parallel_tempering`` with R replicas for S
sweeps, and ``model.gibbs`` of the same chains for R x S steps (what the
replicas' Gibbs steps alone cost).  The ratio is what a PT sweep costs per
replica-sweep; issue 17 asks for at most 1.2.

Training (unless ``--no-train``): one epoch over ``--train-rows`` random
binary rows (density 0.2), batch ``--chains``, of ``fit(method='pt',
n_temperatures=R, k=1)`` against ``fit(method='pcd', k=R)``: the same R
Gibbs sweeps of a batch of chains per update (PT's R - 1 hot replicas and
its beta = 1 chains one step each; PCD's chains R steps).  Epoch times from
``history_`` (the epoch's updates and monitoring, not the setup of fit),
interleaved, median of ``--rounds``.

``--gaussian``: the same with a GaussianBernoulliRBM (unit variances, the
base model at the standardised data means 0; starting states and training
rows standard normal): the visible draws are Box-Muller Gaussians.
``--categorical``: the same sampling comparison for a CategoricalRBM of the
Kunitz domain alignment (``KUNITZ``, read by ``fastrbm.sequences``; q = 21,
its sites), weights N(0, 0.05^2), the visible fields and the base model
from the alignment's site frequencies (``fit`` with ``n_iter=0``), float32,
starting codes drawn from the alignment's rows; PT-PCD training is timed by
the Bernoulli run only.
"""
import argparse
import os
import time

import numpy as np

from fastrbm import BernoulliRBM, CategoricalRBM, GaussianBernoulliRBM
from fastrbm.sampling import parallel_tempering
from fastrbm.sequences import read_alignment

# the alignment beside the checkout (../shared/data/kunitz), as bench_kunitz finds it
from bench_kunitz import DEFAULT_DATA as KUNITZ  # noqa: E402


def train_epoch_seconds(args, method, k, X):
    """Seconds of one training epoch (``history_``) of a 784-H model."""
    cls = GaussianBernoulliRBM if args.gaussian else BernoulliRBM
    model = cls(n_components=args.hidden, n_iter=1, batch_size=args.chains,
                method=method, k=k, n_temperatures=args.replicas, random_state=0,
                n_jobs=args.n_jobs, dtype=np.float32)
    model.fit(X)
    return model.history_[-1]["seconds"]


def time_sampling(model, start, args):
    """Interleaved medians of (parallel tempering, R x S Gibbs steps), seconds."""
    times = {"pt": [], "gibbs": []}
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        parallel_tempering(model, n_sweeps=args.sweeps, n_temperatures=args.replicas,
                           start=start, random_state=1)
        times["pt"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.gibbs(start, k=args.replicas * args.sweeps)
        times["gibbs"].append(time.perf_counter() - t0)
    return np.median(times["pt"]), np.median(times["gibbs"])


def categorical(args):
    """The sampling comparison on a CategoricalRBM of the Kunitz alignment."""
    codes = read_alignment(KUNITZ).codes
    rng = np.random.default_rng(0)
    model = CategoricalRBM(n_components=args.hidden, n_categories=21, n_iter=0,
                           random_state=0, n_jobs=args.n_jobs, dtype=np.float32).fit(codes)
    model.components_[:] = rng.normal(0, 0.05, model.components_.shape)
    start = codes[rng.integers(0, len(codes), args.chains)].astype(np.int32)
    pt, gibbs = time_sampling(model, start, args)
    print(f"CategoricalRBM, Kunitz alignment ({codes.shape[0]} sequences, L={codes.shape[1]}, "
          f"q=21), {args.hidden} hidden, {args.chains} chains, R={args.replicas}, "
          f"{args.sweeps} sweeps, n_jobs={args.n_jobs}, median of {args.rounds}")
    print(f"parallel tempering: {pt:.3f} s; Gibbs, R x sweeps steps: {gibbs:.3f} s; "
          f"ratio {pt / gibbs:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--sweeps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--gaussian", action="store_true",
                        help="a GaussianBernoulliRBM (real-valued visible units)")
    parser.add_argument("--categorical", action="store_true",
                        help="the categorical case (Kunitz alignment); --hidden default 100")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    if args.categorical:
        if args.hidden == parser.get_default("hidden"):
            args.hidden = 100
        categorical(args)
        print(f"load average after: {os.getloadavg()}")
        return
    rng = np.random.default_rng(0)
    if args.gaussian:
        model = GaussianBernoulliRBM(n_components=args.hidden, n_iter=0, random_state=0,
                                     n_jobs=args.n_jobs, dtype=np.float32)
        model.fit(rng.normal(size=(2, 784)))
        # the data's scale as given (no standardisation)
        model.mean_, model.scale_ = np.zeros(784), np.ones(784)
        model.components_[:] = rng.normal(0, 0.05, model.components_.shape)
        model._visible_means = np.zeros(784)
        start = rng.normal(size=(args.chains, 784)).astype(np.float32)
    else:
        model = BernoulliRBM(n_components=args.hidden, n_iter=0, random_state=0,
                             n_jobs=args.n_jobs, dtype=np.float32)
        model.fit(rng.random((2, 784)) < 0.5)
        model.components_[:] = rng.normal(0, 0.05, model.components_.shape)
        model._visible_means = np.full(784, 0.2)
        start = (rng.random((args.chains, 784)) < 0.2).astype(np.float32)
    pt, gibbs = time_sampling(model, start, args)
    units = "Gaussian" if args.gaussian else "Bernoulli"
    print(f"{units} 784-{args.hidden}, {args.chains} chains, R={args.replicas}, {args.sweeps} sweeps, "
          f"n_jobs={args.n_jobs}, median of {args.rounds}")
    print(f"parallel tempering: {pt:.3f} s; Gibbs, R x sweeps steps: {gibbs:.3f} s; "
          f"ratio {pt / gibbs:.2f}")
    if not args.no_train:
        if args.gaussian:
            X = rng.normal(size=(args.train_rows, 784)).astype(np.float32)
        else:
            X = (rng.random((args.train_rows, 784)) < 0.2).astype(np.float32)
        train = {"pt": [], "pcd": []}
        for _ in range(args.rounds):
            train["pt"].append(train_epoch_seconds(args, "pt", 1, X))
            train["pcd"].append(train_epoch_seconds(args, "pcd", args.replicas, X))
        pt, pcd = np.median(train["pt"]), np.median(train["pcd"])
        print(f"training epoch, {args.train_rows} rows, batch {args.chains}: PT-PCD "
              f"(R={args.replicas}, k=1) {pt:.3f} s; PCD-{args.replicas} {pcd:.3f} s; "
              f"ratio {pt / pcd:.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
