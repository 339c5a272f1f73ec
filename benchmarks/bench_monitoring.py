"""Share of ``fit`` time spent on the per-epoch monitoring (``history_``).

Usage::

    python benchmarks/bench_monitoring.py --repeats 5

For each data set, ``BernoulliRBM(verbose=0, n_jobs=1)`` at its defaults
(``--fashion-n-iter`` epochs on Fashion-MNIST) is fitted ``--repeats``
times; the time inside ``_record_epoch`` (the history entry of each epoch)
is summed and divided by the whole ``fit``.  Times are this process's CPU
time (``time.process_time``), single-threaded, so other load on the machine
does not change them much; the median over the repeats is reported.

Data: scikit-learn's digits (1797 x 64, MinMaxScaler) and Fashion-MNIST
(60000 x 784 uint8; synthetic data of that shape without the Debian
package).
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.preprocessing import MinMaxScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datasets import load_training_data  # noqa: E402

import fastrbm  # noqa: E402


def monitored_fit(model, X):
    """(fit CPU seconds, CPU seconds inside _record_epoch)."""
    spent = [0.0]
    record = model._record_epoch

    def timed(*args, **kwargs):
        start = time.process_time()
        try:
            return record(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - start

    model._record_epoch = timed
    start = time.process_time()
    model.fit(X)
    total = time.process_time() - start
    del model._record_epoch
    return total, spent[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fashion-n-iter", type=int, default=2)
    parser.add_argument("--skip-fashion", action="store_true")
    args = parser.parse_args(argv)
    cases = [("digits", MinMaxScaler().fit_transform(load_digits().data), {})]
    if not args.skip_fashion:
        X, description = load_training_data(60000)
        cases.append((f"fashion ({description})", X,
                      {"n_components": 500, "batch_size": 100,
                       "n_iter": args.fashion_n_iter}))
    print("| data | fit (CPU s) | monitoring (CPU s) | share |")
    print("|---|---|---|---|")
    for name, X, params in cases:
        totals, spents = [], []
        for _ in range(args.repeats):
            model = fastrbm.BernoulliRBM(random_state=0, n_jobs=1, **params)
            total, spent = monitored_fit(model, X)
            totals.append(total)
            spents.append(spent)
        shares = [s / t for s, t in zip(spents, totals)]
        print(f"| {name} | {statistics.median(totals):.3f} | {statistics.median(spents):.3f} | "
              f"{100 * statistics.median(shares):.1f}% |", flush=True)


if __name__ == "__main__":
    main()
