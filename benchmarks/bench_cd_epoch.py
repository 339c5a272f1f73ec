"""Time one training epoch: fastrbm vs the NumPy reference, scikit-learn and the GEMM floor.

Usage (full size, on a quiet machine)::

    python benchmarks/bench_cd_epoch.py --repeats 3 --n-samples 60000 --threads 2 \\
        --json cd_epoch.json --markdown cd_epoch.md

Configuration: 784 visible (Fashion-MNIST train images, else synthetic data of
the same shape, see ``datasets.py``), 500 hidden, batch 100, float32, one epoch;
a second configuration at batch 10.  Contenders run *interleaved*: round r runs
every contender once, starting at contender r (rotating order), so slow drift
of the machine hits all of them alike.  Reported: the median over the rounds,
every round's time, and ratios computed from the medians.

What each timing covers (the same facts are printed with the results):

* ``fastrbm ... epoch``: ``model._run_updates(X, order, workspace, 0)`` only,
  i.e. the engine's epoch of minibatch updates (what ``fit`` does per epoch
  minus the per-epoch monitoring on 256 rows).  Untimed before it: ``fit`` with
  ``n_iter=0`` (validation + initialisation on the same data), the workspace,
  and ``order`` = the permutation ``fit`` would use for epoch 0
  (``--order sequential`` uses ``arange``).
* ``fastrbm ... whole fit()``: ``BernoulliRBM(n_iter=1).fit(X)`` including
  validation, initialisation and the monitoring, for a fit-vs-fit comparison.
* ``reference``: ``fastrbm._reference.cd_update`` (NumPy, Philox in NumPy) with
  the same parameters; if a full epoch is projected to take more than
  ``--reference-limit`` seconds it runs on n/10 rows and the time is scaled
  by 10 (labelled "scaled").
* ``sklearn``: ``sklearn.neural_network.BernoulliRBM(n_iter=1).fit(X)``;
  scikit-learn's algorithm is PCD-1 (persistent chains), no shuffling.
* ``floor``: the GEMMs of CD-1 in NumPy and nothing else (no sampling, no
  sigmoid, no update), on contiguous row slices of the float32 data, into
  preallocated outputs: per batch v (B x 784): h = v W^T, v2 = h W,
  h2 = v2 W^T, then the weight gradient either as two GEMMs h^T v and h2^T v2
  ("5-GEMM floor", the target's reference) or as one GEMM [h; -h2]^T [v; v2]
  with K = 2B ("stacked floor", 4 GEMMs, as fastrbm does it).

Every BLAS library runs with ``--threads`` threads (threadpoolctl) around every
contender; fastrbm itself pins BLAS to one thread inside its OpenMP kernels.
"""
import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datasets import load_training_data, to_float32  # noqa: E402

import fastrbm  # noqa: E402
from fastrbm import _reference  # noqa: E402
from fastrbm.rbm import TrainConfig  # noqa: E402

N_HIDDEN = 500
LEARNING_RATE = 0.05
FLOOR_B = "floor: 5 GEMMs"  # name prefix of the floor the ratios use

TARGETS = [
    # (description, numerator contender, denominator contender, threshold, kind)
    ("fastrbm CD-1 (float32 input) <= 1.05x the 5-GEMM floor, batch 100",
     "fastrbm CD-1 float32 epoch [B=100]", "floor: 5 GEMMs [B=100]", 1.05, "le"),
    (">= 2.2x faster than sklearn float32, batch 100",
     "sklearn PCD-1 float32 fit [B=100]", "fastrbm CD-1 float32 epoch [B=100]", 2.2, "ge"),
    (">= 4.5x faster than sklearn float64, batch 100",
     "sklearn PCD-1 float64 fit [B=100]", "fastrbm CD-1 float32 epoch [B=100]", 4.5, "ge"),
    (">= 5x faster than sklearn float32, batch 10",
     "sklearn PCD-1 float32 fit [B=10]", "fastrbm CD-1 float32 epoch [B=10]", 5.0, "ge"),
]


# --------------------------------------------------------------------- contenders
class Contender:
    """One timed thing.  ``run(rows)`` does its untimed setup, then returns the
    seconds of the timed part on the first ``rows`` rows."""

    def __init__(self, name, batch, run, note, scale_rows=None):
        self.name = name
        self.batch = batch
        self.run = run
        self.note = note
        self.scale_rows = scale_rows  # None: full data; else rows actually used
        self.times = []


def fastrbm_model(method, batch, threads, n_iter):
    return fastrbm.BernoulliRBM(n_components=N_HIDDEN, batch_size=batch, n_iter=n_iter,
                                learning_rate=LEARNING_RATE, method=method, k=1,
                                n_jobs=threads, random_state=0)


def epoch_order(model, n, order_kind):
    """The row order ``fit`` uses for epoch 0 (shuffle=True), or arange."""
    if order_kind == "sequential":
        return np.arange(n, dtype=np.intp)
    rng = np.random.default_rng(np.random.SeedSequence(model._seed_words, spawn_key=(2, 0)))
    return rng.permutation(n).astype(np.intp)


def make_fastrbm_epoch(X, method, batch, threads, order_kind):
    def run(rows):
        Xr = X[:rows]
        model = fastrbm_model(method, batch, threads, n_iter=0).fit(Xr)  # init, no epoch
        Xv = model._validate(Xr, reset=False)
        workspace = model._workspace(Xv)
        order = epoch_order(model, rows, order_kind)
        gc.collect()
        t0 = time.perf_counter()
        model._run_updates(Xv, order, workspace, 0)
        elapsed = time.perf_counter() - t0
        check_finite(model.components_)
        expected = -(-rows // batch)
        if model.n_updates_ != expected:
            raise RuntimeError(f"fastrbm made {model.n_updates_} updates, expected {expected}")
        return elapsed
    return run


def make_fastrbm_fit(X, method, batch, threads):
    def run(rows):
        Xr = X[:rows]
        model = fastrbm_model(method, batch, threads, n_iter=1)
        gc.collect()
        t0 = time.perf_counter()
        model.fit(Xr)
        elapsed = time.perf_counter() - t0
        check_finite(model.components_)
        return elapsed
    return run


def make_reference(X, batch, threads, order_kind):
    def run(rows):
        Xr = X[:rows]
        model = fastrbm_model("cd", batch, threads, n_iter=0).fit(Xr)  # same init as fastrbm
        W = model.components_.copy()
        vbias = model.intercept_visible_.copy()
        hbias = model.intercept_hidden_.copy()
        activity = np.full(N_HIDDEN, model.sparsity_target, dtype=W.dtype)
        config = TrainConfig(k=1, persistent=False, learning_rate=LEARNING_RATE, momentum=0.0,
                             weight_decay=0.0, l1=0.0, sparsity_target=model.sparsity_target,
                             sparsity_cost=0.0)
        order = epoch_order(model, rows, order_kind)
        workspace = _reference.make_workspace(W.shape[1], W.shape[0], batch, W.dtype)
        gc.collect()
        t0 = time.perf_counter()
        _reference.cd_update(Xr, order, batch, W, vbias, hbias, None, None, None, None,
                             activity, workspace, config, model._key, 0, threads)
        elapsed = time.perf_counter() - t0
        check_finite(W)
        return elapsed
    return run


def make_sklearn(X, batch):
    from sklearn.neural_network import BernoulliRBM as SkRBM

    def run(rows):
        Xr = X[:rows]
        model = SkRBM(n_components=N_HIDDEN, batch_size=batch, n_iter=1,
                      learning_rate=LEARNING_RATE, random_state=0)
        gc.collect()
        t0 = time.perf_counter()
        model.fit(Xr)
        elapsed = time.perf_counter() - t0
        if model.components_.dtype != X.dtype:
            raise RuntimeError(f"sklearn trained in {model.components_.dtype}, not {X.dtype}")
        check_finite(model.components_)
        return elapsed
    return run


def make_floor(X, batch, stacked):
    """The CD-1 GEMMs alone, NumPy BLAS, preallocated outputs."""
    def run(rows):
        D = X.shape[1]
        rng = np.random.default_rng(0)
        W = rng.normal(0, 0.01, (N_HIDDEN, D)).astype(X.dtype)
        Wneg = -W
        B = batch
        h = np.empty((B, N_HIDDEN), X.dtype)
        v2 = np.empty((B, D), X.dtype)
        h2 = np.empty((B, N_HIDDEN), X.dtype)
        g1 = np.empty((N_HIDDEN, D), X.dtype)
        g2 = np.empty((N_HIDDEN, D), X.dtype)
        Vs = np.empty((2 * B, D), X.dtype)      # [v; v2]
        Hs = np.empty((2 * B, N_HIDDEN), X.dtype)  # [h; -h2]
        gc.collect()
        t0 = time.perf_counter()
        for start in range(0, rows, B):
            v = X[start:min(start + B, rows)]
            nb = len(v)
            if not stacked:
                hb, v2b, h2b = h[:nb], v2[:nb], h2[:nb]
                np.matmul(v, W.T, out=hb)
                np.matmul(hb, W, out=v2b)
                np.matmul(v2b, W.T, out=h2b)
                np.matmul(hb.T, v, out=g1)
                np.matmul(h2b.T, v2b, out=g2)
            else:
                Vs[:nb] = v
                np.matmul(v, W.T, out=Hs[:nb])
                np.matmul(Hs[:nb], W, out=Vs[nb:2 * nb])
                np.matmul(Vs[nb:2 * nb], Wneg.T, out=Hs[nb:2 * nb])
                np.matmul(Hs[:2 * nb].T, Vs[:2 * nb], out=g1)
        elapsed = time.perf_counter() - t0
        check_finite(g1)
        return elapsed
    return run


def check_finite(a):
    if not np.all(np.isfinite(a)):
        raise RuntimeError("non-finite result: the timed run did not do sane work")


# ------------------------------------------------------------------ machine facts
def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads, data_description):
    import scipy
    import sklearn

    blas = [{k: info.get(k) for k in ("internal_api", "version", "architecture",
                                      "num_threads", "filepath")}
            for info in threadpool_info() if info.get("user_api") == "blas"]
    openmp = [{k: info.get(k) for k in ("internal_api", "version", "num_threads", "filepath")}
              for info in threadpool_info() if info.get("user_api") == "openmp"]
    cfg = fastrbm.get_config()
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS",
                                      "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY",
                                      "MKL_NUM_THREADS") if k in os.environ}
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "fastrbm": fastrbm.__version__,
        "fastrbm_openmp": cfg.get("openmp"),
        "fastrbm_simd": cfg.get("simd"),
        "threads": threads,
        "blas": blas,
        "openmp_runtimes": openmp,
        "env": env,
        "data": data_description,
    }


# ------------------------------------------------------------------------- main
def build_contenders(args, X_u8, X_f32, X_f64, ref_rows):
    n, t, big, small = args.n_samples, args.threads, args.batch, args.small_batch
    B = f"[B={big}]"
    b = f"[B={small}]"
    epoch_note = "engine epoch only (_run_updates); init/validation/monitoring untimed"
    cs = [
        Contender(f"fastrbm CD-1 float32 epoch {B}", big,
                  make_fastrbm_epoch(X_f32, "cd", big, t, args.order),
                  f"float32 input in [0,1]; {epoch_note}"),
        Contender(f"fastrbm CD-1 uint8 epoch {B}", big,
                  make_fastrbm_epoch(X_u8, "cd", big, t, args.order),
                  f"raw uint8 input, converted per batch in the kernel; {epoch_note}"),
        Contender(f"fastrbm PCD-1 float32 epoch {B}", big,
                  make_fastrbm_epoch(X_f32, "pcd", big, t, args.order),
                  f"float32 input; {epoch_note}"),
        Contender(f"fastrbm PCD-1 uint8 epoch {B}", big,
                  make_fastrbm_epoch(X_u8, "pcd", big, t, args.order),
                  f"raw uint8 input; {epoch_note}"),
        Contender(f"fastrbm CD-1 float32 whole fit() {B}", big,
                  make_fastrbm_fit(X_f32, "cd", big, t),
                  "BernoulliRBM(n_iter=1).fit(X): validation + init + epoch + monitoring"),
        Contender(f"reference CD-1 float32 {B}", big,
                  make_reference(X_f32, big, t, args.order),
                  "fastrbm._reference.cd_update (NumPy, Philox in NumPy)"
                  + (f"; run on {ref_rows} rows, time scaled by {n / ref_rows:g}"
                     if ref_rows < n else ""),
                  scale_rows=ref_rows if ref_rows < n else None),
        Contender(f"sklearn PCD-1 float32 fit {B}", big, make_sklearn(X_f32, big),
                  "sklearn BernoulliRBM(n_iter=1).fit, float32 (its algorithm: PCD-1)"),
        Contender(f"sklearn PCD-1 float64 fit {B}", big, make_sklearn(X_f64, big),
                  "sklearn BernoulliRBM(n_iter=1).fit, float64 (its algorithm: PCD-1)"),
        Contender(f"floor: 5 GEMMs {B}", big, make_floor(X_f32, big, stacked=False),
                  "NumPy: h=vW^T, v2=hW, h2=v2W^T, h^T v, h2^T v2; nothing else"),
        Contender(f"floor: 4 GEMMs, stacked gradient {B}", big,
                  make_floor(X_f32, big, stacked=True),
                  "NumPy: h=vW^T, v2=hW, -h2=v2(-W)^T, [h;-h2]^T [v;v2] (K=2B); nothing else"),
    ]
    if small:
        cs += [
            Contender(f"fastrbm CD-1 float32 epoch {b}", small,
                      make_fastrbm_epoch(X_f32, "cd", small, t, args.order),
                      f"float32 input; {epoch_note}"),
            Contender(f"sklearn PCD-1 float32 fit {b}", small, make_sklearn(X_f32, small),
                      "sklearn BernoulliRBM(n_iter=1).fit, float32 (PCD-1)"),
            Contender(f"floor: 5 GEMMs {b}", small, make_floor(X_f32, small, stacked=False),
                      "NumPy: the 5 GEMMs per batch; nothing else"),
        ]
    selected = []
    for c in cs:
        if args.only and not any(s.lower() in c.name.lower() for s in args.only):
            continue
        if args.skip and any(s.lower() in c.name.lower() for s in args.skip):
            continue
        selected.append(c)
    return selected


def choose_reference_rows(args, X_f32):
    """Rows for the reference: all, or n/10 if a full epoch is projected too long."""
    n, batch = args.n_samples, args.batch
    probe = min(n, 5 * batch)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        run = make_reference(X_f32, batch, args.threads, args.order)
        run(min(n, batch))  # warm-up
        seconds = run(probe)
    projected = seconds * n / probe
    rows = n if projected <= args.reference_limit else max(batch, n // 10)
    return rows, projected


def median(xs):
    return statistics.median(xs)


def summarise(contenders, n):
    by_name = {c.name: c for c in contenders}
    rows = []
    for c in contenders:
        med = median(c.times)
        tag = f"[B={c.batch}]"
        floor = by_name.get(f"{FLOOR_B} {tag}")
        fast = by_name.get(f"fastrbm CD-1 float32 epoch {tag}")
        rows.append({
            "name": c.name,
            "batch": c.batch,
            "note": c.note,
            "scaled_from_rows": c.scale_rows,
            "median_s": med,
            "times_s": c.times,
            "ratio_to_floor": med / median(floor.times) if floor else None,
            "fastrbm_speedup_over_it": med / median(fast.times) if fast else None,
        })
    targets = []
    for desc, num, den, thr, kind in TARGETS:
        if num in by_name and den in by_name:
            ratio = median(by_name[num].times) / median(by_name[den].times)
            ok = ratio <= thr if kind == "le" else ratio >= thr
            targets.append({"target": desc, "ratio": ratio, "threshold": thr,
                            "met": bool(ok)})
        else:
            targets.append({"target": desc, "ratio": None, "threshold": thr, "met": None})
    return rows, targets


def fmt(x, spec=".3f"):
    return "–" if x is None else format(x, spec)


def markdown(result):
    m, cfg = result["machine"], result["config"]
    out = []
    out.append(f"## One training epoch, {cfg['n_samples']}x784, {N_HIDDEN} hidden, float32, "
               f"{cfg['threads']} threads")
    out.append("")
    out.append(f"Median of {cfg['repeats']} interleaved rounds (rotating order); "
               f"ratios from the medians. Row order: {cfg['order']}.")
    out.append("")
    out.append("| contender | median s/epoch | all rounds (s) | ratio to 5-GEMM floor "
               "(same B) | fastrbm CD-1 f32 speed-up over it |")
    out.append("|---|---:|---|---:|---:|")
    for r in result["results"]:
        name = r["name"] + (" (scaled)" if r["scaled_from_rows"] else "")
        rounds = ", ".join(f"{t:.3f}" for t in r["times_s"])
        out.append(f"| {name} | {r['median_s']:.3f} | {rounds} | {fmt(r['ratio_to_floor'], '.2f')}"
                   f"x | {fmt(r['fastrbm_speedup_over_it'], '.2f')}x |")
    out.append("")
    out.append("What each row times:")
    out.append("")
    for r in result["results"]:
        out.append(f"- **{r['name']}**: {r['note']}")
    out.append("")
    for name, err in result["failed"].items():
        out.append(f"- **FAILED, not measured: {name}**: {err}")
    out.append("")
    out.append("Targets:")
    out.append("")
    for t in result["targets"]:
        status = "not measured" if t["met"] is None else ("MET" if t["met"] else "NOT MET")
        out.append(f"- {t['target']}: {status} (measured {fmt(t['ratio'], '.2f')}x, "
                   f"threshold {t['threshold']}x)")
    out.append("")
    out.append("Machine:")
    out.append("")
    out.append(f"- CPU: {m['cpu_model']}, {m['cpu_count']} logical CPUs "
               f"({m['cpus_usable']} usable), load average at start {m['load_average_at_start']}")
    out.append(f"- {m['platform']}, Python {m['python']}")
    out.append(f"- numpy {m['numpy']}, scipy {m['scipy']}, scikit-learn {m['sklearn']}, "
               f"fastrbm {m['fastrbm']} (OpenMP {m['fastrbm_openmp']}, "
               f"sampling {m['fastrbm_simd']})")
    out.append(f"- threads used: {m['threads']}")
    for lib in m["blas"]:
        out.append(f"- BLAS: {lib['internal_api']} {lib['version']} ({lib['architecture']}, "
                   f"num_threads={lib['num_threads']}) {lib['filepath']}")
    for lib in m["openmp_runtimes"]:
        out.append(f"- OpenMP runtime: {lib['internal_api']} {lib['version']} "
                   f"{lib['filepath']}")
    env = ", ".join(f"{k}={v}" for k, v in m["env"].items()) or "none set"
    out.append(f"- environment: {env}")
    out.append(f"- data: {m['data']}")
    if cfg["repeats"] < 3:
        out.append("")
        out.append(f"**Only {cfg['repeats']} round(s): a smoke run, not a measurement.**")
    return "\n".join(out) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (>= 3)")
    p.add_argument("--n-samples", type=int, default=60000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--small-batch", type=int, default=10,
                   help="second configuration's batch size (0: skip it)")
    p.add_argument("--order", choices=["shuffled", "sequential"], default="shuffled",
                   help="row order of the fastrbm/reference epoch (fit's is shuffled)")
    p.add_argument("--reference-limit", type=float, default=60.0,
                   help="seconds; a longer projected reference epoch runs on n/10 rows")
    p.add_argument("--only", nargs="*", default=None,
                   help="run only contenders whose name contains one of these")
    p.add_argument("--skip", nargs="*", default=None,
                   help="skip contenders whose name contains one of these")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--markdown", help="write the Markdown table here")
    args = p.parse_args(argv)
    if args.repeats < 3:
        print(f"warning: --repeats {args.repeats} < 3: smoke run, not a measurement",
              file=sys.stderr)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > 0.5:
        print(f"warning: load average {load:.2f} at start: the machine is not quiet; "
              "multithreaded BLAS timings suffer most", file=sys.stderr)

    X_u8, description = load_training_data(args.n_samples)
    args.n_samples = n = len(X_u8)
    X_f32 = to_float32(X_u8)
    X_f64 = X_u8 / 255.0
    print(f"data: {description}", flush=True)

    ref_rows = n
    if not args.skip or not any("reference" in s.lower() for s in args.skip):
        ref_rows, projected = choose_reference_rows(args, X_f32)
        print(f"reference: projected full epoch {projected:.1f} s -> "
              f"{'full data' if ref_rows == n else f'{ref_rows} rows, scaled'}", flush=True)

    contenders = build_contenders(args, X_u8, X_f32, X_f64, ref_rows)
    failed = {}
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for c in contenders:  # warm-up: load libraries, start thread pools
            try:
                c.run(min(n, 5 * c.batch))
            except Exception as exc:  # report it, keep measuring the others
                failed[c.name] = f"{type(exc).__name__}: {exc}"
                print(f"FAILED (dropped): {c.name}: {failed[c.name]}", file=sys.stderr)
        contenders = [c for c in contenders if c.name not in failed]
        m = len(contenders)
        for r in range(args.repeats):
            for c in contenders[r % m:] + contenders[:r % m]:
                if c.name in failed:
                    continue
                rows = c.scale_rows or n
                try:
                    seconds = c.run(rows) * (n / rows)
                except Exception as exc:
                    failed[c.name] = f"{type(exc).__name__}: {exc}"
                    print(f"FAILED (dropped): {c.name}: {failed[c.name]}", file=sys.stderr)
                    continue
                c.times.append(seconds)
                print(f"round {r + 1}/{args.repeats}: {c.name}: {seconds:.3f} s"
                      + (" (scaled)" if c.scale_rows else ""), flush=True)
        machine = machine_info(args.threads, description)  # BLAS threads as used

    contenders = [c for c in contenders if c.name not in failed]
    results, targets = summarise(contenders, n)
    result = {
        "config": {"n_samples": n, "n_features": X_u8.shape[1], "n_components": N_HIDDEN,
                   "batch": args.batch, "small_batch": args.small_batch,
                   "learning_rate": LEARNING_RATE, "threads": args.threads,
                   "repeats": args.repeats, "order": args.order,
                   "reference_rows": ref_rows},
        "machine": machine,
        "results": results,
        "failed": failed,
        "targets": targets,
    }
    md = markdown(result)
    print()
    print(md)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md)


if __name__ == "__main__":
    main()
