"""DBNClassifier against scikit-learn's MLPClassifier at their defaults, on
small data sets and on a 10,000-image subset of Fashion-MNIST (issue 14,
item 2: defaults that learn on data of any size).

    python benchmarks/bench_small_data.py                      # everything, seeds 0 1 2
    python benchmarks/bench_small_data.py --datasets iris wine --seeds 0

Every model runs at its defaults (only ``random_state`` is set, to the seed)
behind a MinMaxScaler fitted on the training rows; DBNClassifier gets
``out_of_range='clip'`` because a scaler fitted on training rows maps some
test rows above 1 (the ``out_of_range`` default may accept them itself in
later versions; then the option changes nothing).

- iris, wine, breast_cancer, digits (scikit-learn's bundled copies):
  stratified 5-fold cross-validation, shuffled with the seed; the score of a
  seed is the mean test accuracy over the 5 folds.
- fashion10k: trained on the first 10,000 images of Fashion-MNIST's training
  file, tested on the 10,000 images of its test file
  (``/usr/share/datasets/fashion-mnist``, Debian package
  ``dataset-fashion-mnist``, read with ``fastrbm.datasets.read_idx``), pixels
  / 255 then the MinMaxScaler.

Each row of the Markdown table: mean over seeds, the spread over seeds
(min-max), and the median wall time of one fit (fit only, seconds).  Timings
depend on the machine's load: the script prints the load average.
"""
import argparse
import os
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from fastrbm import DBNClassifier
from fastrbm.datasets import read_idx

FASHION = "/usr/share/datasets/fashion-mnist"
SMALL = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer,
         "digits": load_digits}
DATASETS = list(SMALL) + ["fashion10k"]


def models(seed, n_jobs, dbn_params=None):
    """The contenders at their defaults (random_state = seed); ``dbn_params``
    overrides DBNClassifier settings (for trying a candidate default)."""
    return {
        "DBNClassifier": DBNClassifier(random_state=seed, n_jobs=n_jobs,
                                       out_of_range="clip", **(dbn_params or {})),
        "MLPClassifier": MLPClassifier(random_state=seed),
    }


def fit_score(model, X_train, y_train, X_test, y_test):
    """(test accuracy, fit seconds) of MinMaxScaler + model."""
    pipe = make_pipeline(MinMaxScaler(), model)
    with warnings.catch_warnings():
        # MLPClassifier's "maximum iterations reached" on small data: its defaults
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        pipe.fit(X_train, y_train)
        seconds = time.perf_counter() - start
    return float(pipe.score(X_test, y_test)), seconds


def fashion10k():
    def part(prefix, n):
        X = read_idx(os.path.join(FASHION, f"{prefix}-images-idx3-ubyte.gz"))[:n]
        y = read_idx(os.path.join(FASHION, f"{prefix}-labels-idx1-ubyte.gz"))[:n]
        return X.reshape(len(X), -1).astype(np.float32) / np.float32(255), y
    return part("train", 10000) + part("t10k", 10000)


def run(name, seeds, n_jobs, only=None, dbn_params=None):
    """{model: ([score per seed], [seconds per fit])} for one data set."""
    results = {}
    for seed in seeds:
        if name == "fashion10k":
            splits = [fashion10k()]
        else:
            X, y = SMALL[name](return_X_y=True)
            folds = StratifiedKFold(5, shuffle=True, random_state=seed).split(X, y)
            splits = [(X[tr], y[tr], X[te], y[te]) for tr, te in folds]
        for label, model in models(seed, n_jobs, dbn_params).items():
            if only and label not in only:
                continue
            scores, times = [], []
            for X_train, y_train, X_test, y_test in splits:
                score, seconds = fit_score(model, X_train, y_train, X_test, y_test)
                scores.append(score)
                times.append(seconds)
            entry = results.setdefault(label, ([], []))
            entry[0].append(float(np.mean(scores)))
            entry[1].extend(times)
            print(f"  {name} seed {seed} {label}: {np.mean(scores):.4f} "
                  f"(fit {np.median(times):.2f} s median)", flush=True)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="DBNClassifier's n_jobs (default: its default, None)")
    parser.add_argument("--models", nargs="+", choices=["DBNClassifier", "MLPClassifier"],
                        default=None, help="run only these models")
    parser.add_argument("--dbn-param", nargs="+", default=[], metavar="NAME=VALUE",
                        help="DBNClassifier settings other than the defaults (numbers)")
    args = parser.parse_args(argv)
    dbn_params = {}
    for item in args.dbn_param:
        key, value = item.split("=", 1)
        dbn_params[key] = float(value) if any(c in value for c in ".e") else int(value)
    if dbn_params:
        print(f"DBNClassifier settings: {dbn_params}", flush=True)
    print(f"load average before: {os.getloadavg()}", flush=True)
    rows = []
    for name in args.datasets:
        for label, (scores, times) in run(name, args.seeds, args.n_jobs, args.models,
                                          dbn_params).items():
            rows.append(f"| {name} | {label} | {np.mean(scores):.4f} | "
                        f"{min(scores):.4f}-{max(scores):.4f} | {np.median(times):.2f} |")
    print(f"load average after: {os.getloadavg()}")
    print(f"\nseeds {args.seeds}\n")
    print("| data set | model | accuracy (mean over seeds) | spread over seeds | "
          "fit time, median (s) |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
