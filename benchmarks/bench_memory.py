"""Peak memory of ``fastrbm.BernoulliRBM.fit``: nothing of the data's size is allocated.

Usage (full size)::

    python benchmarks/bench_memory.py --n-samples 60000 --json memory.json

For each input type (uint8 and float32, both 60000x784 by default) a fresh
subprocess imports everything, loads the data (straight into its final array,
chunk by chunk, so loading leaves no transient peak), makes a warm-up fit on
100 rows (libraries, BLAS and OpenMP thread pools loaded), then fits
``BernoulliRBM(n_components=500, batch_size=100, n_iter=1)`` once on the whole
array.  Reported: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` before and
after the fit, and, on Linux, from a second fresh process doing the same, the
peak RSS during the fit alone (``VmHWM`` after resetting it through
``/proc/self/clear_refs`` just before the fit) minus the RSS just before it.
The verdict uses the larger of the two growths.  The growth is compared with the buffers the fit
is expected to need (the model, the chains, the workspace, the monitoring
subset, the epoch's order array) and with the size of the data itself
(47 MB as uint8, 188 MB as float32): a whole-data copy or conversion would
show up as growth of that size.

Caveat: ``ru_maxrss`` is a high-water mark; if the process's peak before the
fit was above its RSS then, the fit's growth is hidden up to that gap.  The
"before" numbers show that gap (it should be near zero here).  Memory freed
by the warm-up fit may be reused by the measured fit, so the growth can fall a
few MB short of the expected buffers; the question answered is whether
anything of the data's size (tens to hundreds of MB) was allocated.
"""
import argparse
import json
import os
import resource
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MB = 1e6


def status_kb(field):
    """A field of /proc/self/status in kB (VmRSS, VmHWM), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def maxrss_kb():
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value // 1024 if sys.platform == "darwin" else value  # macOS: bytes


def reset_peak():
    """Reset VmHWM to the current RSS (Linux >= 4.0); True if it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    hwm, rss = status_kb("VmHWM"), status_kb("VmRSS")
    return hwm is not None and rss is not None and hwm <= rss + 1024


def expected_buffers(model, n_samples, n_features, data_itemsize, n_threads):
    """Bytes of what one fit is expected to allocate (rbm.py, _gibbs.pyx)."""
    import numpy as np

    dt = np.dtype(model.components_.dtype).itemsize
    H, D, B = model.n_components, n_features, model.batch_size
    intp = np.dtype(np.intp).itemsize
    monitor = min(256, n_samples)
    return {
        "W (components_) HxD": H * D * dt,
        "visible + hidden biases, hidden activity": (D + 2 * H) * dt,
        "persistent chains (h_samples_) BxH": B * H * dt,
        "workspace V 2BxD": 2 * B * D * dt,
        "workspace A 2BxH": 2 * B * H * dt,
        "workspace Hs BxH": B * H * dt,
        "workspace vbar D": D * dt,
        "monitoring subset 256 rows of X": monitor * D * data_itemsize,
        "monitoring: reconstruction + float64 copy (256xD each)": monitor * D * (dt + 8),
        "monitoring: row permutation (n intp)": n_samples * intp,
        "epoch order: permutation + intp copy (2 x n intp)": 2 * n_samples * intp,
        "row-block scratch (threads x 64 x (D+H))": max(n_threads, 1) * 64 * (D + H) * dt,
    }


def child(args):
    """Runs in the fresh subprocess; prints one JSON line."""
    import numpy as np
    import sklearn  # noqa: F401  (everything imported before the baseline)
    import threadpoolctl  # noqa: F401

    sys.path.insert(0, HERE)
    import fastrbm
    from datasets import load_training_data

    dtype = np.uint8 if args.child == "uint8" else np.float32
    X, description = load_training_data(args.n_samples, dtype=dtype)
    n, d = X.shape
    kwargs = dict(n_components=500, batch_size=100, n_iter=1, random_state=0)
    if args.threads:
        kwargs["n_jobs"] = args.threads
    fastrbm.BernoulliRBM(**kwargs).fit(X[:100])  # warm-up: libraries, thread pools

    before = {"ru_maxrss_kb": maxrss_kb(), "VmRSS_kb": status_kb("VmRSS"),
              "VmHWM_kb": status_kb("VmHWM")}
    reset_ok = reset_peak() if args.reset_peak else False
    model = fastrbm.BernoulliRBM(**kwargs)
    error = None
    try:
        model.fit(X)
    except Exception as exc:  # reported, not hidden
        error = f"{type(exc).__name__}: {exc}"
    after = {"ru_maxrss_kb": maxrss_kb(), "VmRSS_kb": status_kb("VmRSS"),
             "VmHWM_kb": status_kb("VmHWM")}
    from fastrbm._backend import resolve_n_threads

    expected = (expected_buffers(model, n, d, X.dtype.itemsize,
                                 resolve_n_threads(model.n_jobs))
                if hasattr(model, "components_") else {})
    print(json.dumps({
        "input": args.child, "shape": [n, d], "data_bytes": int(X.nbytes),
        "float32_copy_bytes": n * d * 4, "description": description,
        "before": before, "after": after, "peak_reset_ok": reset_ok,
        "expected": expected, "error": error,
    }))


def run_child(kind, args, reset):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind,
           "--n-samples", str(args.n_samples)] + (["--reset-peak"] if reset else [])
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"child for {kind} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(r):
    b, a = r["before"], r["after"]
    lines = [f"### {r['input']} input, {r['shape'][0]}x{r['shape'][1]}", "",
             f"data: {r['description']}", ""]
    if r["error"]:
        lines += [f"**fit FAILED: {r['error']}** (numbers below are not a fit's)", ""]
    growth_maxrss = (a["ru_maxrss_kb"] - b["ru_maxrss_kb"]) * 1024
    lines += [
        "| quantity | MB |", "|---|---:|",
        f"| ru_maxrss before fit (after imports, data, warm-up) | {fmt_kb(b['ru_maxrss_kb'])} |",
        f"| RSS just before fit (VmRSS) | {fmt_kb(b['VmRSS_kb'])} |",
        f"| ru_maxrss after fit | {fmt_kb(a['ru_maxrss_kb'])} |",
        f"| **ru_maxrss growth** | **{growth_maxrss / MB:.2f}** |",
    ]
    growth = growth_maxrss
    rr = r["reset_run"]
    if rr["peak_reset_ok"] and rr["after"]["VmHWM_kb"] is not None:
        reset_growth = (rr["after"]["VmHWM_kb"] - rr["before"]["VmRSS_kb"]) * 1024
        growth = max(growth, reset_growth)
        lines.append(f"| second fresh process: **peak RSS during fit (VmHWM reset just "
                     f"before it) - RSS before** | **{reset_growth / MB:.2f}** |")
    expected_total = sum(r["expected"].values())
    for name, nbytes in r["expected"].items():
        lines.append(f"| expected: {name} | {nbytes / MB:.3f} |")
    lines += [
        f"| expected total | {expected_total / MB:.2f} |",
        f"| for scale: the data itself ({r['input']}) | {r['data_bytes'] / MB:.1f} |",
        f"| for scale: the data as float32 | {r['float32_copy_bytes'] / MB:.1f} |",
        f"| for scale: the data as float64 | {2 * r['float32_copy_bytes'] / MB:.1f} |",
        "",
    ]
    smallest = min(r["data_bytes"], r["float32_copy_bytes"])
    if expected_total >= smallest / 2:
        verdict = ("INCONCLUSIVE at this size: the data is too small next to the model's "
                   "own buffers; run with the full 60000 rows")
    elif growth < smallest / 2:
        verdict = ("no allocation of the data's size (growth below half the smallest "
                   f"whole-data copy, {smallest / 2 / MB:.1f} MB)")
    else:
        verdict = (f"growth reaches half a whole-data copy ({smallest / 2 / MB:.1f} MB): "
                   "something of the data's size may have been allocated")
    lines.append(f"Verdict: {verdict}; growth / expected buffers = "
                 f"{growth / expected_total:.2f}x." if expected_total else f"Verdict: {verdict}.")
    if not rr["peak_reset_ok"]:
        lines.append("(VmHWM could not be reset here: only ru_maxrss growth is available.)")
    return "\n".join(lines) + "\n", growth


def fmt_kb(kb):
    return "–" if kb is None else f"{kb * 1024 / MB:.1f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-samples", type=int, default=60000)
    p.add_argument("--threads", type=int, default=None, help="n_jobs (default: None)")
    p.add_argument("--inputs", nargs="*", default=["uint8", "float32"],
                   choices=["uint8", "float32"])
    p.add_argument("--json", help="write the results here")
    p.add_argument("--markdown", help="write the Markdown report here")
    p.add_argument("--child", choices=["uint8", "float32"], help=argparse.SUPPRESS)
    p.add_argument("--reset-peak", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    results, text = [], [f"## Peak memory of BernoulliRBM(n_components=500, batch_size=100, "
                         f"n_iter=1).fit, {args.n_samples} rows", ""]
    for kind in args.inputs:
        r = run_child(kind, args, reset=False)  # plain: ru_maxrss before/after
        r["reset_run"] = run_child(kind, args, reset=True)  # VmHWM reset before the fit
        md, growth = report(r)
        r["growth_bytes"] = growth
        results.append(r)
        text.append(md)
    md = "\n".join(text)
    print(md)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md)


if __name__ == "__main__":
    main()
