"""DBNClassifier with a Gaussian first layer against the Bernoulli version, on
real-valued data that ships with scikit-learn.

    python benchmarks/bench_gaussian.py            # about 2 minutes on 2 cores

Data sets and inputs:

* digits (1797 x 64): the Gaussian model gets the raw 0-16 intensities, the
  Bernoulli model the intensities min-max scaled to [0, 1];
* breast_cancer (569 x 30) and wine (178 x 13): the Gaussian model gets
  standardised features (StandardScaler fitted on the training fold), the
  Bernoulli model min-max scaled ones (MinMaxScaler fitted on the training
  fold; test values outside [0, 1] are clamped with ``out_of_range='clip'``).

Three models per data set, identical except for the input layer:
``visible_units='bernoulli'`` (min-max data), ``visible_units='gaussian'``
with fixed sigma, and with ``sigma='learn'`` (learned per-feature sigma in the
first RBM).  Same hidden layers, RBM epochs, fine-tuning settings and seeds;
each model keeps DBNClassifier's defaults otherwise (the Gaussian first
layer's default pretraining step size is 0.01, the Bernoulli one's 0.05).
Accuracy is measured by stratified 5-fold cross-validation (fixed folds)
with ``--seeds`` model seeds per fold; the table gives mean +- standard
deviation over the folds x seeds, and the mean fit time (pretraining plus
fine-tuning, one thread).  Prints a Markdown table.
"""
import argparse
import time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from fastrbm import DBNClassifier

# (name, loader, hidden layers, what the Gaussian model gets)
DATASETS = [
    ("digits", load_digits, (256,), "raw"),
    ("breast_cancer", load_breast_cancer, (64,), "standardised"),
    ("wine", load_wine, (64,), "standardised"),
]
VARIANTS = [
    ("Bernoulli, min-max", "bernoulli", {}),
    ("Gaussian, fixed sigma", "gaussian", {}),
    ("Gaussian, learned sigma", "gaussian", {"sigma": "learn"}),
]


def inputs(kind, gaussian_input, X_train, X_test):
    """The (train, test) arrays a model with these visible units reads."""
    if kind == "bernoulli":
        scaler = MinMaxScaler().fit(X_train)
        return scaler.transform(X_train), scaler.transform(X_test)
    if gaussian_input == "raw":
        return X_train, X_test
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test)


def run(args):
    rows = []
    for name, loader, layers, gaussian_input in DATASETS:
        X, y = loader(return_X_y=True)
        X = X.astype(np.float64)
        folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
        results = {}
        for label, kind, first_params in VARIANTS:
            accs, secs = [], []
            for train, test in folds:
                Xtr, Xte = inputs(kind, gaussian_input, X[train], X[test])
                for seed in range(args.seeds):
                    clf = DBNClassifier(
                        layers, visible_units=kind,
                        rbm_params=[dict(n_iter=args.pretrain_epochs, batch_size=32,
                                         **first_params)],
                        max_iter=args.epochs, random_state=seed, n_jobs=args.n_jobs,
                        out_of_range="clip" if kind == "bernoulli" else "raise")
                    start = time.perf_counter()
                    clf.fit(Xtr, y[train])
                    secs.append(time.perf_counter() - start)
                    accs.append(clf.score(Xte, y[test]))
            results[label] = (np.mean(accs), np.std(accs), np.mean(secs), np.array(accs))
            print(f"{name:14s} {label:24s} accuracy {np.mean(accs):.4f} +- {np.std(accs):.4f}"
                  f"  fit {np.mean(secs):.2f} s", flush=True)
        rows.append((name, X.shape, layers, gaussian_input, results))
    return rows


def table(rows, args):
    base = VARIANTS[0][0]
    head = ("| data set | n x d | hidden | " + " | ".join(label for label, _, _ in VARIANTS)
            + " | Gaussian - Bernoulli, paired (fixed / learned sigma) "
            "| fit time (s), same order |")
    lines = [head, "|" + "---|" * (len(VARIANTS) + 5)]
    for name, shape, layers, gaussian_input, results in rows:
        accs = " | ".join(f"{results[label][0]:.4f} +- {results[label][1]:.4f}"
                          for label, _, _ in VARIANTS)
        # the same folds and seeds: differences fit by fit, and how many of
        # them the Gaussian model wins / ties / loses
        paired = []
        for label, _, _ in VARIANTS[1:]:
            diff = results[label][3] - results[base][3]
            paired.append(f"{np.mean(diff):+.4f} +- {np.std(diff):.4f} "
                          f"({np.sum(diff > 0)}/{np.sum(diff == 0)}/{np.sum(diff < 0)})")
        times = " / ".join(f"{results[label][2]:.2f}" for label, _, _ in VARIANTS)
        lines.append(f"| {name} (Gaussian input: {gaussian_input}) | {shape[0]} x {shape[1]} "
                     f"| {layers} | {accs} | {' / '.join(paired)} | {times} |")
    lines.append("")
    lines.append("Paired differences: mean +- std over the fits, then (wins/ties/losses) "
                 "of the Gaussian model.")
    lines.append(f"Test accuracy, stratified 5-fold CV x {args.seeds} seeds (mean +- std over "
                 f"{5 * args.seeds} fits); {args.pretrain_epochs} RBM epochs (batch 32), "
                 f"{args.epochs} fine-tuning epochs; n_jobs={args.n_jobs}.")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=2, help="model seeds per fold")
    parser.add_argument("--pretrain-epochs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=30, help="fine-tuning epochs")
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args(argv)
    print(table(run(args), args))


if __name__ == "__main__":
    main()
