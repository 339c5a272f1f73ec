"""Scale-out benchmarks (issue 18): streaming fits from zarr/HDF5 and
data-parallel training on a 2-worker LocalCluster.

Usage::

    python benchmarks/bench_dask.py stream  [--n-train 60000] [--hidden 64] [--chunk 1000]
                                            [--buffers 1 4 16 60]
    python benchmarks/bench_dask.py workers [--n-train 60000] [--hidden 100] [--epochs 3]
                                            [--sync-every 0 100] [--betas 2000] [--reverse]
                                            [--method pcd|cd] [--learning-rate 0.05]
                                            [--single-seeds 0 1 2] [--curve]
                                            [--workers 1 2] [--worker-seeds 0 1 2]
                                            [--schedule constant|linear] [--ais-base model|data]

``stream``: writes the Fashion-MNIST training images (60,000 x 784 uint8)
to a zarr array and an HDF5 dataset with chunks of ``--chunk`` rows, then
fits one epoch from each with ``fastrbm.dask.stream_fit`` for each buffer
size, every fit in a fresh process that reports the growth of its resident
memory: peak RSS during the fit (sampled every 5 ms) minus RSS just before
it.  The in-memory fit of the same images (loaded whole) is the reference,
and the table says whether a buffer covering the data gives its parameters
bit for bit.

``workers``: the same BernoulliRBM trained for ``--epochs`` epochs in one
process (all cores; one fit per ``--single-seeds`` seed, whose spread is
the noise floor of the comparison; ``--curve`` adds the test
log-likelihood after each epoch) and on a ``LocalCluster`` of 2 worker processes with 1
thread each, averaging per epoch (``--sync-every 0``) or every N
minibatches; the test log-likelihood of each (AIS, one log Z estimate per
model with the same seed), the wall-clock times, and the measured split of
the data-parallel fit into worker compute (the slowest worker's, per round)
and per-round overhead (the rest of the round's wall-clock time:
scheduling, gather, average, broadcast).  From a 1-worker and a 2-worker run on the cluster it
fits overhead(P) = a + b P per round and prints an analytic estimate of the
wall-clock time for 8 and 32 workers: compute(1 worker) / P + rounds x
overhead(P).  On a shared 2-core machine the 2-worker speed-up cannot
exceed 2 and is usually below it; the load average is printed.  The
estimate assumes compute divides evenly, the overhead grows linearly with
the workers (the client gathers and broadcasts every replica's state), and
per-worker rounds shrink with P when syncing every N minibatches.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

try:
    from bench_ais_loglik import LinearDecay
except ImportError:                      # run from the repository root
    from benchmarks.bench_ais_loglik import LinearDecay


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _load():
    return os.getloadavg()[0]


def _stream_child(args):
    """One fit in this process; prints a JSON line with the RSS growth."""
    import hashlib

    from fastrbm import BernoulliRBM
    from fastrbm import dask as fdask

    model = BernoulliRBM(n_components=args.hidden, n_iter=1, batch_size=100, random_state=0)
    if args.format == "zarr":
        import zarr

        source = zarr.open_array(args.path, mode="r")
    elif args.format == "hdf5":
        import h5py

        source = h5py.File(args.path, "r")["x"]
    else:
        source = None
    peak, running = [0], [True]

    def sample():
        while running[0]:
            peak[0] = max(peak[0], _rss())
            time.sleep(0.005)

    before = _rss()
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    if source is None:
        # the in-memory reference: the whole array loaded, then fit
        X = np.load(args.path)
        model.fit(X)
    else:
        fdask.stream_fit(model, source, buffer_chunks=args.buffer)
    seconds = time.perf_counter() - start
    running[0] = False
    thread.join()
    peak[0] = max(peak[0], _rss())
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(getattr(model, name)).tobytes()
                                     for name in ("components_", "intercept_visible_",
                                                  "intercept_hidden_"))).hexdigest()[:16]
    print(json.dumps({"growth_mb": (peak[0] - before) / 2**20, "seconds": seconds,
                      "hash": digest}))


def stream(args):
    import h5py
    import zarr

    from fastrbm.datasets import load_fashion_mnist

    X = load_fashion_mnist("train")[0][:args.n_train]
    tmp = tempfile.mkdtemp(prefix="bench_dask_")
    paths = {"zarr": os.path.join(tmp, "x.zarr"), "hdf5": os.path.join(tmp, "x.h5"),
             "memory": os.path.join(tmp, "x.npy")}
    z = zarr.open_array(paths["zarr"], mode="w", shape=X.shape, chunks=(args.chunk, 784),
                        dtype=np.uint8)
    z[:] = X
    with h5py.File(paths["hdf5"], "w") as f:
        f.create_dataset("x", data=X, chunks=(args.chunk, 784))
    np.save(paths["memory"], X)
    n_chunks = -(-len(X) // args.chunk)
    print(f"# {X.shape[0]} x {X.shape[1]} uint8 ({X.nbytes / 2**20:.1f} MiB), chunks of "
          f"{args.chunk} rows ({args.chunk * 784 / 2**20:.2f} MiB), {n_chunks} chunks; "
          f"1 epoch, {args.hidden} hidden, batch 100; load average {_load():.1f}")
    print("| source | buffer (chunks) | buffer MiB | peak RSS growth MiB | seconds | "
          "parameters |")
    print("|---|---|---|---|---|---|")
    runs = [("memory", 0)] + [(fmt, b) for fmt in ("zarr", "hdf5") for b in args.buffers]
    reference = None
    for fmt, buffer in runs:
        out = subprocess.run([sys.executable, __file__, "_stream_child", "--format", fmt,
                              "--path", paths[fmt], "--buffer", str(buffer), "--hidden",
                              str(args.hidden)], check=True, capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if fmt == "memory":
            reference = result["hash"]
            same = "reference"
        else:
            same = "= in-memory" if result["hash"] == reference else "differs"
        size = ("whole" if fmt == "memory"
                else f"{min(buffer, n_chunks) * args.chunk * 784 / 2**20:.1f}")
        print(f"| {fmt} | {buffer if buffer else '-'} | {size} | {result['growth_mb']:.1f} | "
              f"{result['seconds']:.1f} | {same} |", flush=True)
    print(f"# load average after: {_load():.1f}")


def _compare_seeds(rows):
    """Mean and spread over seeds of each kind of run, and the 2-worker gap."""
    groups = {}
    for label, _wall, ll, _profile in rows:
        if ll is None:
            continue
        kind = label.rsplit(", seed", 1)[0]
        groups.setdefault(kind, []).append(float(ll.split()[0]))
    single = groups.get("1 process, all cores")
    for kind, values in groups.items():
        values = np.array(values)
        spread = f", sd {values.std(ddof=1):.2f}" if len(values) > 1 else ""
        gap = ("" if single is None or kind.startswith("1 process") else
               f"; minus the 1-process mean: {values.mean() - np.mean(single):+.2f} nats")
        print(f"# {kind}: mean {values.mean():.2f} over {len(values)} seed(s){spread}{gap}")


def workers(args):
    import dask.array as da
    from distributed import Client, LocalCluster

    from fastrbm import BernoulliRBM, evaluation
    from fastrbm import dask as fdask
    from fastrbm.datasets import load_fashion_mnist

    rng = np.random.default_rng(0)
    X = load_fashion_mnist("train")[0][:args.n_train]
    X_test = load_fashion_mnist("test")[0][:args.n_test]
    # binarised by sampling, fixed seed (as bench_ais_loglik.py)
    X = (rng.random(X.shape) < X / 255.0).astype(np.float32)
    X_test = (rng.random(X_test.shape) < X_test / 255.0).astype(np.float32)
    params = dict(n_components=args.hidden, n_iter=args.epochs, batch_size=20,
                  learning_rate=args.learning_rate, momentum=0.5, random_state=0,
                  method=args.method)

    def test_ll(model):
        result = evaluation.log_partition_ais(model, n_chains=100, betas=args.betas or None,
                                              random_state=0, reverse=args.reverse,
                                              data=X if args.ais_base == "data" else None)
        ll = float(np.mean(evaluation.log_likelihood(model, X_test, result)))
        if not args.reverse:
            return f"{ll:.2f}"
        # the bracket of log Z read as one of the mean log-likelihood
        return (f"{ll:.2f} [{ll + result.log_z - result.log_z_high:.2f}, "
                f"{ll + result.log_z - result.log_z_low:.2f}]")

    print(f"# Fashion-MNIST {len(X)} train / {len(X_test)} test, binarised; "
          f"{args.hidden} hidden, {args.method.upper()}-1, batch 20, lr {args.learning_rate} "
          f"{args.schedule}, momentum 0.5, {args.epochs} epochs; "
          f"AIS 100 chains, "
          f"{f'{args.betas} linear temperatures' if args.betas else 'the S&M schedule'}, "
          f"base model from the {args.ais_base}"
          f"{', forward and reverse' if args.reverse else ', forward only'}; "
          f"load average {_load():.1f}")
    rows = []
    def schedule():
        # a fit callback, or None: the learning rate decayed linearly to 0
        if args.schedule == "constant":
            return None
        return LinearDecay(args.learning_rate, args.epochs)

    for seed in args.single_seeds:
        start = time.perf_counter()
        single = BernoulliRBM(**{**params, "random_state": seed}).fit(X, callbacks=schedule())
        rows.append((f"1 process, all cores, seed {seed}", time.perf_counter() - start,
                     test_ll(single), None))
    if args.curve:
        # the single-process fit's test log-likelihood after each epoch (seed 0)
        for n_epochs in range(1, args.epochs + 2):
            model = BernoulliRBM(**{**params, "n_iter": n_epochs}).fit(X)
            print(f"# 1 process, seed 0, after {n_epochs} epoch(s): {test_ll(model)}",
                  flush=True)
    Xd = da.from_array(X, chunks=(len(X) // 2, 784))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        # warm-up: the workers import fastrbm once
        client.run(lambda: __import__("fastrbm"))
        measured = {}
        for sync in args.sync_every:
            for n_workers in args.workers:
                for seed in args.worker_seeds:
                    profile = {}
                    start = time.perf_counter()
                    model = fdask.fit(BernoulliRBM(**{**params, "random_state": seed}), Xd,
                                      client=client, sync_every=sync or None,
                                      n_workers=n_workers, profile=profile,
                                      callbacks=schedule())
                    wall = time.perf_counter() - start
                    measured.setdefault((sync, n_workers), (wall, profile))
                    label = (f"{n_workers} worker{'s' if n_workers > 1 else ''}, sync "
                             f"{'per epoch' if not sync else f'every {sync}'}, seed {seed}")
                    rows.append((label, wall, test_ll(model) if n_workers == 2 else None,
                                 profile))
    print("| run | wall s | test log-lik (nats) | rounds | worker compute s | "
          "round overhead s |")
    print("|---|---|---|---|---|---|")
    for label, wall, ll, profile in rows:
        extra = ("| - | - | -" if profile is None else
                 f"| {profile['rounds']} | {profile['worker_seconds']:.1f} | "
                 f"{sum(profile['overhead_seconds']):.1f}")
        ll_text = "-" if ll is None else ll
        print(f"| {label} | {wall:.1f} | {ll_text} {extra} |")
    _compare_seeds(rows)
    n_rows, batch = len(X), params["batch_size"]
    for sync in args.sync_every:
        if (sync, 1) not in measured or (sync, 2) not in measured:
            continue
        (w1, p1), (w2, p2) = measured[sync, 1], measured[sync, 2]
        per_round = [sum(p["overhead_seconds"]) / p["rounds"] for p in (p1, p2)]
        b = per_round[1] - per_round[0]
        a = per_round[0] - b
        compute_1 = p1["worker_seconds"]
        setup = w2 - p2["worker_seconds"] - sum(p2["overhead_seconds"])
        print(f"# sync {'per epoch' if not sync else f'every {sync}'}: overhead per round "
              f"{per_round[0] * 1e3:.0f} ms (1 worker), {per_round[1] * 1e3:.0f} ms "
              f"(2 workers) -> a = {a * 1e3:.0f} ms, b = {b * 1e3:.0f} ms/worker; "
              f"setup (partitioning, initialisation) {setup:.1f} s")
        for p in (8, 32):
            rounds = args.epochs * (1 if not sync else -(-(n_rows // p) // (sync * batch)))
            overhead = max(0.0, a + b * p)
            estimate = compute_1 / p + rounds * overhead + setup
            print(f"#   estimate {p} workers: {estimate:.1f} s = compute {compute_1 / p:.1f} "
                  f"+ {rounds} rounds x {overhead * 1e3:.0f} ms + setup {setup:.1f} "
                  f"(1 worker measured: {w1:.1f} s)")
    print(f"# load average after: {_load():.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("stream")
    s.add_argument("--n-train", type=int, default=60000)
    s.add_argument("--hidden", type=int, default=64)
    s.add_argument("--chunk", type=int, default=1000)
    s.add_argument("--buffers", type=int, nargs="+", default=[1, 4, 16, 60])
    c = sub.add_parser("_stream_child")
    c.add_argument("--format")
    c.add_argument("--path")
    c.add_argument("--buffer", type=int)
    c.add_argument("--hidden", type=int)
    w = sub.add_parser("workers")
    w.add_argument("--n-train", type=int, default=60000)
    w.add_argument("--n-test", type=int, default=10000)
    w.add_argument("--hidden", type=int, default=100)
    w.add_argument("--epochs", type=int, default=3)
    w.add_argument("--sync-every", type=int, nargs="+", default=[0, 100])
    w.add_argument("--betas", type=int, default=2000,
                   help="linear AIS temperatures; 0: the default S&M schedule")
    w.add_argument("--method", choices=["pcd", "cd"], default="pcd")
    w.add_argument("--schedule", choices=["constant", "linear"], default="constant",
                   help="linear: the learning rate decays to 0 over the epochs (a fit "
                        "callback, on both sides)")
    w.add_argument("--ais-base", choices=["model", "data"], default="model",
                   help="AIS base model: the model's visible biases or the data's means")
    w.add_argument("--workers", type=int, nargs="+", default=[1, 2], choices=[1, 2],
                   help="cluster runs (the scaling estimate needs both 1 and 2)")
    w.add_argument("--worker-seeds", type=int, nargs="+", default=[0],
                   help="seeds of the cluster fits (their spread against the single fits')")
    w.add_argument("--learning-rate", type=float, default=0.05)
    w.add_argument("--single-seeds", type=int, nargs="+", default=[0],
                   help="seeds of the single-process fits (their spread is the noise "
                        "floor of the comparison)")
    w.add_argument("--curve", action="store_true",
                   help="also print the single-process test log-likelihood after "
                        "1 .. epochs + 1 epochs")
    w.add_argument("--reverse", action="store_true",
                   help="also run reverse AIS and print the log-likelihood's 95%% bracket")
    args = parser.parse_args()
    {"stream": stream, "_stream_child": _stream_child, "workers": workers}[args.command](args)


if __name__ == "__main__":
    main()
