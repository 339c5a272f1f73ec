"""Issue 22's hard AIS case: a 784-16 BernoulliRBM whose exact log Z is known.

Usage::

    python benchmarks/bench_ais_784_16.py [--seeds 2] [--chains 100]

Trains BernoulliRBM(n_components=16, n_iter=5, learning_rate=0.05,
dtype=float64, random_state=0) on the first 20,000 Fashion-MNIST training
images (uint8, read from /usr/share/datasets/fashion-mnist or FASTRBM_DATA),
computes the exact log Z (the 16 hidden units enumerated), then runs
``evaluation.log_partition_ais`` (default schedule, forward + reverse) for
each seed, without and with ``data=X``, and prints the estimate, the reverse
estimate, the certified lower bound, the 95% bracket, whether it contains
the exact value, the effective sample size, the time and every AISWarning.
Ends with the default ``log_likelihood`` (exact log Z here) of 1,000 rows.
"""
import argparse
import time
import warnings

import numpy as np

from fastrbm import BernoulliRBM, evaluation
from fastrbm.datasets import load_fashion_mnist


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--chains", type=int, default=100)
    args = parser.parse_args()
    X, _ = load_fashion_mnist(download=False)
    X = X[:20000]
    model = BernoulliRBM(n_components=16, n_iter=5, learning_rate=0.05, dtype=np.float64,
                         random_state=0, n_jobs=1).fit(X)
    t = time.perf_counter()
    exact = evaluation.log_partition_exact(model)
    print(f"exact log Z = {exact:.3f} ({time.perf_counter() - t:.1f} s)")
    for seed in range(args.seeds):
        for data in (None, X):
            t = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", evaluation.AISWarning)
                r = evaluation.log_partition_ais(model, n_chains=args.chains,
                                                 random_state=seed, data=data)
            print(f"seed {seed} data={'X' if data is not None else 'None'}: log_z {r.log_z:.3f} "
                  f"reverse {r.log_z_reverse:.3f} (exact start {r.reverse_exact}) certified "
                  f"{r.log_z_certified:.3f} (mean field {r.log_z_mean_field:.3f}) bracket "
                  f"[{r.log_z_low:.3f}, {r.log_z_high:.3f}] ess {r.ess:.1f} "
                  f"contains exact: {r.log_z_low <= exact <= r.log_z_high}; "
                  f"{time.perf_counter() - t:.1f} s")
            for item in caught:
                print("   warning:", item.message)
    t = time.perf_counter()
    ll = evaluation.log_likelihood(model, X[:1000])
    print(f"log_likelihood default (exact log Z): mean {ll.mean():.3f} "
          f"({time.perf_counter() - t:.1f} s)")


if __name__ == "__main__":
    main()
