"""BernoulliRBM.fit on scikit-learn's digits: fastrbm against scikit-learn.

Usage::

    python benchmarks/bench_digits_fit.py --rounds 5

Both at their defaults (256 hidden units, 10 epochs, batch 10, learning rate
0.1, ``random_state=0``) on digits scaled by MinMaxScaler (1797 x 64),
default threads for both.  The contenders run interleaved (round r starts
with the other one than round r - 1); printed: every time, the medians and
their ratio.  fastrbm's time includes its per-epoch monitoring
(``history_``), which scikit-learn does not do with ``verbose=0``.
"""
import argparse
import statistics
import time

from sklearn.datasets import load_digits
from sklearn.neural_network import BernoulliRBM as SklearnRBM
from sklearn.preprocessing import MinMaxScaler

from fastrbm import BernoulliRBM as FastRBM


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    X = MinMaxScaler().fit_transform(load_digits().data)
    contenders = {"fastrbm": FastRBM, "scikit-learn": SklearnRBM}
    for cls in contenders.values():
        cls(random_state=0).fit(X)  # warm-up (imports, first-touch)
    times = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(args.rounds):
        for name in names[r % 2:] + names[:r % 2]:
            start = time.perf_counter()
            contenders[name](random_state=0).fit(X)
            times[name].append(time.perf_counter() - start)
    for name, values in times.items():
        print(f"{name:13s} median {statistics.median(values):.3f} s  "
              f"{[round(v, 3) for v in values]}")
    ratio = statistics.median(times["scikit-learn"]) / statistics.median(times["fastrbm"])
    print(f"scikit-learn / fastrbm = {ratio:.2f}")


if __name__ == "__main__":
    main()
