"""Training quality of PCD, centred PCD and PT-PCD on Fashion-MNIST (AIS test log-likelihood).

Usage::

    python benchmarks/bench_tempering_train.py [--n-train 10000] [--n-test 2000]
                                               [--hidden 100] [--epochs 10] [--k 1]
                                               [--pt-k K] [--temperatures 10] [--chains 100]
                                               [--betas default|N] [--threads 2]
                                               [--learning-rate 0.05] [--schedule constant|linear]
                                               [--coverage N] [--sample-steps 1000]
                                               [--coverage-pt]

Trains three BernoulliRBMs with the same hidden units, batch (100: the
persistent chains), learning rate (0.05 constant), momentum 0.5, weight
decay 1e-4, seed and number of updates: PCD-k, PCD-k with centred gradients
(``centered=True``), and PCD-k whose persistent chains are parallel-tempering
replicas (``method='pt'``, ``--temperatures`` equally spaced betas from the
data's base-rate model to the model).  Data: Fashion-MNIST intensities
binarised by sampling (fixed seeds), the first ``--n-train`` training and
``--n-test`` test images.  Each model's log Z by AIS (``--chains`` chains,
forward and reverse, as ``bench_ais_loglik.py`` runs it); the table gives
the mean test log-likelihood (from the forward log Z, and from the larger of
it and the certified lower bound of log Z: an upper bound on the
likelihood when AIS misses mass), the log Z estimates, the
training time, the median epoch time (from ``history_``; PT's per-update
Python loop included) and PT's swap acceptance per pair in the last epoch.
The load average before and after is printed: the machine may be shared.

``--pt-k`` gives PT-PCD its own Gibbs steps per replica (default ``--k``):
``--k 10 --pt-k 1 --temperatures 10`` compares PCD-10 with PT-PCD over 10
replicas at equal Gibbs sweeps per update.  ``--schedule linear`` decays the
learning rate linearly to 0 over the epochs (``bench_ais_loglik.py``'s
rule).  The bracket column reads AIS's 95% bracket of log Z as one of the
mean test log-likelihood.

``--coverage N`` measures the mode coverage of each model's samples: a
logistic-regression classifier is trained on the binarised training images
and their labels, then labels ``N`` samples of each model (``sample``:
Gibbs chains from random states, ``--sample-steps`` steps, seed 0); the
table gives each class's share (the data's is 10% per class), the total
variation distance of the shares from the data's, and the smallest share.
The classifier's own shares on the test images are printed as a baseline
(its errors move shares too).  ``--coverage-pt`` adds, per model, the
shares of samples from the parallel-tempering sampler at equal Gibbs sweeps
(``N / --temperatures`` chains, each with ``--temperatures`` replicas).
"""
import argparse
import os
import sys
import time

import numpy as np

from fastrbm import BernoulliRBM, evaluation

try:
    from bench_ais_loglik import ROOT, LinearDecay, binarised, run_ais
except ImportError:                      # run from the repository root
    from benchmarks.bench_ais_loglik import ROOT, LinearDecay, binarised, run_ais

#: name -> the estimator arguments that differ between the variants
VARIANTS = {
    "PCD": dict(method="pcd"),
    "PCD centred": dict(method="pcd", centered=True),
    "PT-PCD": dict(method="pt"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=10000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--temperatures", type=int, default=10)
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--betas", default="default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pt-k", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--schedule", choices=["constant", "linear"], default="constant")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--coverage", type=int, default=0)
    parser.add_argument("--sample-steps", type=int, default=1000)
    parser.add_argument("--coverage-pt", action="store_true")
    args = parser.parse_args()
    pt_k = args.k if args.pt_k is None else args.pt_k
    betas = None if args.betas == "default" else int(args.betas)
    X = binarised(ROOT + "train-images-idx3-ubyte.gz", args.n_train, seed=0)
    X_test = binarised(ROOT + "t10k-images-idx3-ubyte.gz", args.n_test, seed=1)
    common = dict(n_components=args.hidden, batch_size=100, learning_rate=args.learning_rate,
                  momentum=0.5,
                  weight_decay=1e-4, k=args.k, n_iter=args.epochs, random_state=0,
                  n_jobs=args.threads, n_temperatures=args.temperatures)
    load_start = os.getloadavg()
    start = time.perf_counter()
    classifier = baseline = None
    if args.coverage:
        classifier, baseline = class_labeller(args.n_train, X, X_test)
    rows = []
    coverage = {}
    for name in args.variants:
        changes = dict(VARIANTS[name])
        if changes["method"] == "pt":
            changes["k"] = pt_k
        model = BernoulliRBM(**{**common, **changes})
        callbacks = (LinearDecay(args.learning_rate, args.epochs)
                     if args.schedule == "linear" else None)
        t = time.perf_counter()
        model.fit(X, callbacks=callbacks)
        seconds = time.perf_counter() - t
        model.learning_rate = args.learning_rate        # the callback changed it
        epoch_seconds = float(np.median([entry["seconds"] for entry in model.history_]))
        result, messages, ais_seconds = run_ais(model, X, args.chains, betas)
        for message in messages:
            print(f"{name}: warning: {message}", file=sys.stderr, flush=True)
        ll = float(evaluation.log_likelihood(model, X_test, log_z=result).mean())
        acceptance = getattr(model, "swap_acceptance_", None)
        rows.append((name, seconds, epoch_seconds, ll, result, messages, ais_seconds,
                     acceptance))
        print(f"{name}: {ll:.2f} nats, log Z {result.log_z:.3f} / reverse "
              f"{result.log_z_reverse:.3f}, train {seconds:.1f} s, AIS {ais_seconds:.1f} s",
              file=sys.stderr, flush=True)
        if classifier is not None:
            t = time.perf_counter()
            samples = model.sample(args.coverage, n_steps=args.sample_steps)
            coverage[name] = class_shares(classifier, samples)
            print(f"{name}: {args.coverage} samples x {args.sample_steps} steps in "
                  f"{time.perf_counter() - t:.1f} s, shares "
                  f"{np.round(coverage[name], 3).tolist()}", file=sys.stderr, flush=True)
            if args.coverage_pt:
                # equal Gibbs sweeps: 1/R of the chains, each with R replicas
                t = time.perf_counter()
                samples = model.sample(args.coverage // args.temperatures,
                                       n_steps=args.sample_steps, method="pt",
                                       n_temperatures=args.temperatures)
                coverage[name + ", PT sampler"] = class_shares(classifier, samples)
                print(f"{name}: PT sampler, {len(samples)} samples x {args.temperatures} "
                      f"replicas x {args.sample_steps} sweeps in "
                      f"{time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    print(f"Fashion-MNIST binarised, {len(X)} train / {len(X_test)} test rows, "
          f"{args.epochs} epochs ({args.epochs * -(-len(X) // 100)} updates), "
          f"{args.hidden} hidden, batch 100, k {args.k} (PT: {pt_k} per replica), "
          f"lr {args.learning_rate:g} {args.schedule}, momentum 0.5, weight decay "
          f"1e-4, {args.threads} threads; PT: {args.temperatures} temperatures; AIS "
          f"{args.chains} chains x {'S&M schedule' if betas is None else betas} "
          f"temperatures, forward + reverse")
    print("| variant | test log-likelihood (nats), forward log Z | 95% bracket "
          "| with log Z >= certified "
          "| log Z: forward, reverse, certified | train time | median epoch "
          "| swap acceptance (last epoch, coldest pair last) | warnings |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for name, seconds, epoch_seconds, ll, result, messages, ais_seconds, acc in rows:
        acc_cell = "-" if acc is None else " ".join(f"{a:.2f}" for a in acc)
        # log Z is at least the certified bound: the likelihood at most this
        ll_cert = ll + result.log_z - max(result.log_z, result.log_z_certified)
        bracket = (f"[{ll + result.log_z - result.log_z_high:.2f}, "
                   f"{ll + result.log_z - result.log_z_low:.2f}]")
        print(f"| {name} | {ll:.2f} | {bracket} | {ll_cert:.2f} | {result.log_z:.2f}, "
              f"{result.log_z_reverse:.2f}, {result.log_z_certified:.2f} | "
              f"{seconds:.1f} s | {epoch_seconds:.2f} s | {acc_cell} | "
              f"{'; '.join(messages) if messages else 'none'} |")
    if coverage:
        print(f"\nMode coverage: {args.coverage} samples per model ({args.sample_steps} Gibbs "
              f"steps from random states; PT sampler: {args.coverage // args.temperatures} "
              f"chains x {args.temperatures} replicas), labelled by logistic regression trained on the "
              f"binarised training images")
        print("| samples of | " + " | ".join(f"class {c}" for c in range(10))
              + " | TV from 10% each | smallest share |")
        print("|---|" + "---:|" * 12)
        for name, shares in [("test images (classifier baseline)", baseline),
                             *coverage.items()]:
            tv = 0.5 * float(np.abs(shares - 0.1).sum())
            print(f"| {name} | " + " | ".join(f"{100 * x:.1f}%" for x in shares)
                  + f" | {tv:.3f} | {100 * shares.min():.1f}% |")
    load_end = os.getloadavg()
    print(f"\nwhole run {time.perf_counter() - start:.0f} s on {os.cpu_count()} logical CPUs; "
          f"load average (1, 5, 15 min) at start {tuple(round(x, 2) for x in load_start)}, "
          f"at end {tuple(round(x, 2) for x in load_end)}")


def class_labeller(n_train, X, X_test):
    """A classifier of the binarised images and its class shares on the test images."""
    from sklearn.linear_model import LogisticRegression

    from fastrbm.datasets import load_fashion_mnist

    y = load_fashion_mnist("train")[1][:n_train]
    y_test = load_fashion_mnist("test")[1][:len(X_test)]
    t = time.perf_counter()
    classifier = LogisticRegression(max_iter=200).fit(X, y)
    print(f"classifier: test accuracy {classifier.score(X_test, y_test):.4f}, "
          f"trained in {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    return classifier, class_shares(classifier, X_test)


def class_shares(classifier, samples):
    """Share of each of the 10 classes among the classifier's labels of ``samples``."""
    labels = classifier.predict(samples)
    return np.bincount(labels, minlength=10)[:10] / len(labels)


if __name__ == "__main__":
    main()
