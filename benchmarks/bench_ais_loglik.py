"""Test log-likelihood (AIS) of 500-hidden RBMs on Fashion-MNIST.

Usage::

    python benchmarks/bench_ais_loglik.py [--epochs 10] [--n-train 60000] [--n-test 10000]
                                          [--chains 100] [--betas default|N] [--skip-sklearn]

Trains, for the same number of epochs: fastrbm CD-1, CD-10 and PCD-10, and
scikit-learn's BernoulliRBM (PCD-1, its only algorithm), all with 500 hidden
units, batch 100, learning rate 0.05 (fastrbm also momentum 0.5, weight decay
1e-4: Hinton's guide).  Data: Fashion-MNIST intensities binarised by sampling
(pixel on with probability intensity / 255, fixed seed), training and test
sets.  Each model's log Z is estimated by AIS (``--chains`` chains; the
Salakhutdinov-Murray schedule unless ``--betas N`` asks for N linear
temperatures), from the same base-rate model (the binarised training data's
means); the table reports the mean test log-likelihood, the AIS bracket, the
training time and the AIS time.  The scikit-learn model is evaluated by
copying its parameters into a fastrbm model (same energy function).
"""
import argparse
import time

import numpy as np

from fastrbm import BernoulliRBM, evaluation

try:
    from datasets import read_idx_images
except ImportError:                      # run from the repository root
    from benchmarks.datasets import read_idx_images

ROOT = "/usr/share/datasets/fashion-mnist/"


def binarised(path, n, seed):
    X = read_idx_images(path, n)
    rng = np.random.default_rng(seed)
    out = np.empty(X.shape, dtype=np.float32)
    for start in range(0, len(X), 8192):       # chunks: no float64 copy of the data
        part = X[start:start + 8192]
        out[start:start + 8192] = rng.random(part.shape, dtype=np.float32) * 255 < part
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--betas", default="default")
    parser.add_argument("--skip-sklearn", action="store_true")
    args = parser.parse_args()
    betas = None if args.betas == "default" else int(args.betas)
    X = binarised(ROOT + "train-images-idx3-ubyte.gz", args.n_train, seed=0)
    X_test = binarised(ROOT + "t10k-images-idx3-ubyte.gz", args.n_test, seed=1)
    common = dict(n_components=500, batch_size=100, learning_rate=0.05, n_iter=args.epochs,
                  random_state=0)
    runs = [("fastrbm CD-1", dict(method="cd", k=1)),
            ("fastrbm CD-10", dict(method="cd", k=10)),
            ("fastrbm PCD-10", dict(method="pcd", k=10))]
    rows = []
    for name, extra in runs:
        model = BernoulliRBM(momentum=0.5, weight_decay=1e-4, **common, **extra)
        t = time.perf_counter()
        model.fit(X)
        rows.append((name, model, time.perf_counter() - t))
    if not args.skip_sklearn:
        from sklearn.neural_network import BernoulliRBM as SkRBM

        sk = SkRBM(**common)
        t = time.perf_counter()
        sk.fit(X)
        seconds = time.perf_counter() - t
        model = BernoulliRBM(n_components=500, n_iter=0, random_state=0).fit(X)
        model.components_ = sk.components_.astype(np.float32)
        model.intercept_hidden_ = sk.intercept_hidden_.astype(np.float32)
        model.intercept_visible_ = sk.intercept_visible_.astype(np.float32)
        rows.append(("scikit-learn (PCD-1)", model, seconds))
    print(f"Fashion-MNIST binarised, {len(X)} train / {len(X_test)} test rows, "
          f"{args.epochs} epochs, AIS {args.chains} chains x "
          f"{'14,501 (S&M)' if betas is None else betas} temperatures")
    print("| model | train time | test log-likelihood (nats) | AIS bracket of log Z | AIS time |")
    print("|---|---:|---:|---:|---:|")
    for name, model, seconds in rows:
        t = time.perf_counter()
        result = evaluation.log_partition_ais(model, n_chains=args.chains, betas=betas,
                                              random_state=0, data=X)
        ais_seconds = time.perf_counter() - t
        ll = evaluation.log_likelihood(model, X_test, log_z=result).mean()
        print(f"| {name} | {seconds:.1f} s | {ll:.2f} | "
              f"[{result.log_z_low:.2f}, {result.log_z_high:.2f}] | {ais_seconds:.1f} s |",
              flush=True)


if __name__ == "__main__":
    main()
