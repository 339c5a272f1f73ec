"""DBNClassifier on Fashion-MNIST: test accuracy and wall time with and without
pretraining, beside scikit-learn's MLPClassifier with the same hidden layers
and epochs.

Full size (the issue's target: 90% test accuracy, the whole run within 30
minutes on 2 cores), with the fine-tuning settings chosen by ``tune_dbn.py``
on a validation split (20.1 minutes, 90.03%: benchmarks/README.md):

    python benchmarks/bench_dbn.py --layers 500 500 2000 --n-train 60000 --epochs 30 \
        --batch-size 128 --learning-rate 0.8 --time-report

Reduced size (what fits a shared machine; the default):

    python benchmarks/bench_dbn.py --layers 500 500 --n-train 10000

Every model uses its own defaults except the architecture, the number of
fine-tuning epochs (``--epochs``, also MLPClassifier's ``max_iter``), the
seed and the DBNClassifier fine-tuning settings given as options
(``--batch-size``, ``--learning-rate``, ``--dropout``, ``--weight-decay``;
chosen on a validation split by ``tune_dbn.py``, never on the test set);
pretraining uses DBNClassifier's default RBM settings unless
``--pretrain-epochs`` is given.  Data: ``/usr/share/datasets/fashion-mnist``
IDX files (Debian package ``dataset-fashion-mnist``), read with gzip + NumPy,
scaled to [0, 1] as float32.  Prints a Markdown table.

``--time-report`` adds, per model, the time of each phase (pretraining of
each RBM layer, fine-tuning: total and per epoch, prediction on the test set)
and the load average before and after it: the machines are shared, and a
load above the number of cores means the times are upper bounds.  To plan a
full run, time a short one (e.g. ``--epochs 1 --pretrain-epochs 1
--time-report``) and scale the per-epoch costs; a 1-epoch run overstated
MLPClassifier's per-epoch time on this machine (benchmarks/README.md).
"""
import argparse
import gzip
import os
import sys
import time
import warnings

import numpy as np

ROOT = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """An IDX file (ubyte, 1-d labels or 3-d images) as a NumPy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">i4", count=ndim, offset=4)
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(root, n_train, n_test):
    """(X_train, y_train, X_test, y_test), images flattened, float32 in [0, 1]."""
    def part(prefix, n):
        X = read_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"))[:n]
        y = read_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"))[:n]
        return (X.reshape(len(X), -1) / np.float32(255)).astype(np.float32), y
    return (*part("train", n_train), *part("t10k", n_test))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[500, 500])
    parser.add_argument("--n-train", type=int, default=10000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=None,
                        help="fine-tuning epochs (default: DBNClassifier's max_iter)")
    parser.add_argument("--pretrain-epochs", type=int, default=None,
                        help="RBM epochs per layer (default: DBNClassifier's)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="fine-tuning minibatch (default: DBNClassifier's)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="fine-tuning learning rate (default: DBNClassifier's)")
    parser.add_argument("--dropout", type=float, default=None,
                        help="fine-tuning dropout (default: DBNClassifier's)")
    parser.add_argument("--weight-decay", type=float, default=None,
                        help="fine-tuning weight decay (default: DBNClassifier's)")
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["pretrained", "random", "sklearn"])
    parser.add_argument("--data", default=ROOT)
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--time-report", action="store_true",
                        help="print the time of each phase and the load average per model")
    args = parser.parse_args(argv)

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    import fastrbm
    from fastrbm import DBNClassifier

    Xtr, ytr, Xte, yte = load(args.data, args.n_train, args.n_test)
    epochs = args.epochs or DBNClassifier().max_iter
    rbm_params = None if args.pretrain_epochs is None else {"n_iter": args.pretrain_epochs}
    # fine-tuning settings given on the command line (both DBNClassifiers)
    tuned = {name: value for name, value in (
        ("batch_size", args.batch_size), ("learning_rate", args.learning_rate),
        ("dropout", args.dropout), ("weight_decay", args.weight_decay)) if value is not None}
    arch = "-".join(map(str, [Xtr.shape[1], *args.layers, 10]))
    print(f"Fashion-MNIST {len(Xtr)} train / {len(Xte)} test, {arch}, {epochs} fine-tuning "
          f"epochs, seed {args.seed}, DBNClassifier settings {tuned or 'defaults'}", flush=True)
    fastrbm.show_config()

    rows = []
    models = []
    if "pretrained" not in args.skip:
        models.append(("fastrbm DBNClassifier, pretrained", DBNClassifier(
            tuple(args.layers), pretrain=True, rbm_params=rbm_params, max_iter=epochs,
            random_state=args.seed, n_jobs=args.n_jobs, verbose=args.verbose, **tuned)))
    if "random" not in args.skip:
        models.append(("fastrbm DBNClassifier, random init", DBNClassifier(
            tuple(args.layers), pretrain=False, max_iter=epochs, random_state=args.seed,
            n_jobs=args.n_jobs, verbose=args.verbose, **tuned)))
    if "sklearn" not in args.skip:
        models.append(("scikit-learn MLPClassifier (defaults: relu, adam)", MLPClassifier(
            tuple(args.layers), max_iter=epochs, random_state=args.seed,
            verbose=bool(args.verbose))))
    run_start = time.perf_counter()
    reports = []
    for name, model in models:
        load_before = _loadavg()
        start = time.perf_counter()
        with warnings.catch_warnings():
            # MLPClassifier's max_iter warning only; DBNClassifier's own
            # ConvergenceWarning (a network that learned nothing) is shown
            warnings.filterwarnings("ignore", category=ConvergenceWarning, module=r"sklearn\.")
            model.fit(Xtr, ytr)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        acc = model.score(Xte, yte)
        predict_seconds = time.perf_counter() - start
        pre = getattr(model, "pretrain_seconds_", 0.0)
        rows.append((name, acc, seconds, pre))
        print(f"{name}: test accuracy {acc:.4f}, fit {seconds:.1f} s "
              f"(pretraining {pre:.1f} s)", flush=True)
        if args.time_report:
            report = _phase_report(name, model, seconds, pre, predict_seconds, load_before,
                                   _loadavg())
            reports.append(report)
            print(report, flush=True)

    print()
    print(f"| model ({arch}, {len(Xtr)} train, {epochs} epochs) | test accuracy | "
          f"fit wall time (s) | of which pretraining (s) |")
    print("|---|---|---|---|")
    for name, acc, seconds, pre in rows:
        print(f"| {name} | {acc:.4f} | {seconds:.1f} | {pre:.1f} |")
    print(f"\nwhole run (data loading excluded): {time.perf_counter() - run_start:.1f} s "
          f"on {os.cpu_count()} logical CPUs")
    if reports:
        print()
        print("\n".join(reports))
    return 0


def _loadavg():
    """The 1-minute load average, or None where the OS does not offer it."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _phase_report(name, model, seconds, pre, predict_seconds, load_before, load_after):
    """Time of each phase of one model's fit (Markdown list)."""
    def load(x):
        return "n/a" if x is None else f"{x:.2f}"

    lines = [f"- {name}: fit {seconds:.1f} s, prediction on the test set "
             f"{predict_seconds:.1f} s; load average {load(load_before)} before, "
             f"{load(load_after)} after"]
    dbn = getattr(model, "dbn_", None)
    if dbn is not None:
        for i, (rbm, hist) in enumerate(zip(dbn.rbms_, dbn.history_)):
            epoch_s = [entry["seconds"] for entry in hist]
            lines.append(f"  - pretraining layer {i + 1} ({rbm.components_.shape[1]}-"
                         f"{rbm.components_.shape[0]}): {len(epoch_s)} epochs, "
                         f"{sum(epoch_s):.1f} s in the epochs "
                         f"({np.mean(epoch_s) if epoch_s else 0:.2f} s per epoch)")
        lines.append(f"  - pretraining in all (with transforms between layers): {pre:.1f} s")
    history = getattr(model, "history_", None)
    if history:
        epoch_s = [entry["seconds"] for entry in history]
        lines.append(f"  - fine-tuning: {len(epoch_s)} epochs, {sum(epoch_s):.1f} s "
                     f"({np.mean(epoch_s):.2f} s per epoch)")
    elif hasattr(model, "n_iter_"):
        lines.append(f"  - training: {model.n_iter_} epochs, "
                     f"{seconds / max(model.n_iter_, 1):.2f} s per epoch")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
