"""DBNClassifier trained data-parallel on a dask cluster (issue 18): test
accuracy and wall time of a plain fit against fits on a LocalCluster of 1
and 2 worker processes with 1 thread each.

Usage::

    python benchmarks/bench_dask_classifier.py [--data digits|fashion10k] [--hidden 64]
                                               [--epochs 15] [--pretrain-epochs 5]
                                               [--sync-every 0 5] [--repeats 3]

Contenders, interleaved (one fit of each per repeat; the median wall time
of ``--repeats`` is reported, with its ratio to the plain fit's median in
the same run):

- ``plain``: ``DBNClassifier.fit`` on the NumPy array, one process with
  OpenMP on all the cores it may use;
- ``plain, batch x2``: the same with twice the batch size: the sequential
  updates that the 2-worker fit makes (each replica makes half the
  minibatches of an epoch, and each average is over two workers'
  minibatches), the fit the averaged one is expected to resemble;
- ``dask, 1 worker`` / ``dask, 2 workers`` with each ``--sync-every``
  (0: average once per epoch): ``fastrbm.dask.fit`` on a dask array of the
  training rows in 4 chunks.

Every fit uses the same seed, so the accuracy of a contender is the same in
every repeat (it is printed once).  Data: scikit-learn's digits (1,797 8x8
images, 25% stratified test split) or the first 10,000 Fashion-MNIST
training images with the 10,000 test images, scaled to [0, 1] as float32.
DBNClassifier's defaults except the hidden layers, ``max_iter`` (and
``min_updates=0``: the epochs are ``--epochs`` for every contender) and the
pretraining epochs.  The machine is shared: the load average is printed
before and after, and a load above the core count makes every time an upper
bound; with 2 cores a 2-worker fit cannot be faster than half a plain fit.
"""
import argparse
import os
import statistics
import time
import warnings

import numpy as np


def _load(name):
    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        X, y = load_digits(return_X_y=True)
        X = (X / 16.0).astype(np.float32)
        return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    from fastrbm.datasets import load_fashion_mnist

    X_train, y_train = load_fashion_mnist("train")
    X_test, y_test = load_fashion_mnist("test")
    return ((X_train[:10000] / 255.0).astype(np.float32), (X_test / 255.0).astype(np.float32),
            y_train[:10000], y_test)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["digits", "fashion10k"], default="digits")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--sync-every", type=int, nargs="+", default=[0, 5])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import dask.array as da
    from distributed import Client, LocalCluster

    from fastrbm import dask as fdask
    from fastrbm._backend import resolve_n_threads
    from fastrbm.dbn import DBNClassifier

    warnings.simplefilter("ignore")
    X_train, X_test, y_train, y_test = _load(args.data)
    params = dict(hidden_layer_sizes=tuple(args.hidden), max_iter=args.epochs, min_updates=0,
                  rbm_params={"n_iter": args.pretrain_epochs}, random_state=0)
    chunk = -(-len(X_train) // 4)
    Xd = da.from_array(X_train, chunks=(chunk, X_train.shape[1]))
    yd = da.from_array(y_train, chunks=chunk)
    print(f"# {args.data}: {len(X_train)} train / {len(X_test)} test; DBNClassifier "
          f"{tuple(args.hidden)}, {args.pretrain_epochs} pretraining epochs per layer, "
          f"{args.epochs} fine-tuning epochs (Adam, defaults otherwise); plain fits on "
          f"{resolve_n_threads(None)} OpenMP threads, workers 1 thread each; "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        client.run(lambda: __import__("fastrbm"))   # warm-up: the workers import fastrbm
        contenders = [("plain", lambda: DBNClassifier(**params).fit(X_train, y_train)),
                      ("plain, batch x2", lambda: DBNClassifier(
                          **params, batch_size=64).fit(X_train, y_train))]
        for sync in args.sync_every:
            for workers in (1, 2):
                label = (f"dask, {workers} worker{'s' if workers > 1 else ''}, sync "
                         f"{'per epoch' if not sync else f'every {sync}'}")
                contenders.append((label, lambda w=workers, s=sync: fdask.fit(
                    DBNClassifier(**params), Xd, yd, client=client, n_workers=w,
                    sync_every=s or None)))
        walls = {label: [] for label, _ in contenders}
        accuracy = {}
        for _ in range(args.repeats):
            for label, fit in contenders:
                start = time.perf_counter()
                model = fit()
                walls[label].append(time.perf_counter() - start)
                accuracy.setdefault(label, model.score(X_test, y_test))
    plain = statistics.median(walls["plain"])
    print("| fit | test accuracy | wall s (median) | / plain |")
    print("|---|---|---|---|")
    for label, _ in contenders:
        wall = statistics.median(walls[label])
        print(f"| {label} | {accuracy[label]:.4f} | {wall:.1f} | {wall / plain:.2f} |")
    print(f"# load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
