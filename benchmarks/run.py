"""Run the benchmark suite: interleaved rounds, medians, ratios, targets, scaling.

Usage::

    python benchmarks/run.py --profile quick            # smoke run, about a minute
    python benchmarks/run.py --profile full --update-readme   # 12-20 min (estimated), idle 2 cores

Results go to ``benchmarks/results/<profile>.md`` and ``.json`` (``--output-dir``
changes the folder) and, with matplotlib, ``<profile>_scaling.png``;
``--update-readme`` also replaces the section of ``benchmarks/README.md``
between the ``run.py results`` marker comments.  The exit status is 1 when a
contender failed (raised), 0 otherwise; a contender that does not offer a case
(e.g. PyTorch not installed, scikit-learn's k > 1) is skipped with its reason,
which is not a failure.  No timing is ever asserted.

Method: within a case, round r runs every contender once, starting at
contender r (rotating order), so drift of a shared machine hits them alike;
each number is the median over the rounds; every ratio is taken between
medians of the same case in the same run.  Each contender first makes one
untimed warm-up call on a small version of the case (libraries, thread pools).
Calls shorter than ``min_time`` are repeated within a round and the mean per
call is kept.  The cases and contenders are defined in ``suite.py``.

Profiles (``T`` = every usable CPU):

quick
    One small case per operation (float32, batch 100, 500 hidden, k = 1,
    T threads, 500-1000 rows, 10 AIS temperatures), the target cases at
    reduced size (batch 100 on 2000 rows at T threads and at 1 thread,
    batch 10 on 500 rows), scaling over 500-2000 rows, 64-2000 hidden units
    and 1..T threads, and peak memory at 2000 and 8000 uint8 rows; 3 rounds.
    A smoke test (estimated at about a minute on an idle 2-core machine; 3
    minutes measured with the load average at 4): the sizes are too small to
    judge the targets, and the table says so.
full
    The target cases at the targets' size (60000 x 784, 500 hidden, batch
    100 and 10, float32; 1 and T threads; 5 rounds).  Then, for every
    operation, one-factor-at-a-time around the centre (float32, batch 100,
    500 hidden, k = 1, T threads): dtype float32 / float64 / uint8, batch
    10 / 100 / 1000, hidden 64 / 500 / 2000, k 1 / 10, threads 1 / T (epochs
    on 10000 rows, 2000 at batch 10 and 5000 at 2000 hidden; transform and
    free energy on 10000 rows; AIS 100 temperatures; DBN epoch 5000 rows;
    the reference's epochs on at most 1000 rows, scaled); 3 rounds.
    Scaling over 7500-60000 rows, 64-2000 hidden units and 1..T threads;
    peak memory at 7500-60000 uint8 rows.
"""
import argparse
import dataclasses
import datetime
import gc
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

README = os.path.join(HERE, "README.md")
BEGIN_MARK = "<!-- BEGIN run.py results -->"
END_MARK = "<!-- END run.py results -->"
TARGET_ROWS = 60000  # the targets are stated for Fashion-MNIST's 60000 training rows

PROFILES = {
    "quick": {"rounds": 3, "target_rounds": 3, "min_time": 0.01,
              "scaling_rows": [500, 1000, 2000], "scaling_hidden": [64, 500, 2000],
              "scaling_hidden_rows": 500, "scaling_thread_rows": 1000,
              "memory_rows": [2000, 8000]},
    "full": {"rounds": 3, "target_rounds": 5, "min_time": 0.05,
             "scaling_rows": [7500, 15000, 30000, 60000], "scaling_hidden": [64, 500, 2000],
             "scaling_hidden_rows": 10000, "scaling_thread_rows": 30000,
             "memory_rows": [7500, 15000, 30000, 60000]},
}

# (what, measured quantity, threshold, "ge"/"le"); the cases are those tagged
# "target" in suite.profile_cases: cd_epoch, float32, 500 hidden, k = 1
TARGETS = [
    {"id": "floor", "what": "CD-1 epoch at most 1.05x the 5-GEMM floor (batch 100)",
     "threshold": 1.05, "kind": "le"},
    {"id": "sklearn100", "what": "at least 2.2x faster than scikit-learn float32 (batch 100)",
     "threshold": 2.2, "kind": "ge"},
    {"id": "sklearn10", "what": "at least 5x faster than scikit-learn float32 (batch 10)",
     "threshold": 5.0, "kind": "ge"},
    {"id": "threads", "what": "thread efficiency at least 85% at 2 threads (batch 100)",
     "threshold": 0.85, "kind": "ge"},
]


# ------------------------------------------------------------------ measuring
def measure_case(case, data, rounds, min_time, log=print):
    """Time every contender of ``case``; returns the case's result dict.

    ``times_s`` holds one number per round: seconds per call (mean over the
    round's repeated calls), multiplied by the contender's ``scale``.
    """
    import suite
    from threadpoolctl import threadpool_limits

    result = {"op": case.op, "label": case.label, "case": dataclasses.asdict(case),
              "contenders": {}, "skipped": {}, "failed": {}}
    live = []
    with threadpool_limits(limits=case.threads, user_api="blas"):
        for name in case.contenders:
            try:
                warm = suite.prepare(name, case.warmup(), data)
                warm.run(warm.setup())
                prep = suite.prepare(name, case, data)
                number = 1
                if prep.per_call:
                    state = prep.setup()
                    t0 = time.perf_counter()
                    prep.run(state)
                    number = suite.inner_loops(time.perf_counter() - t0, min_time)
            except suite.Unavailable as exc:
                result["skipped"][name] = str(exc)
                continue
            except Exception as exc:  # reported, and the others still measured
                result["failed"][name] = f"{type(exc).__name__}: {exc}"
                log(f"  FAILED {name}: {result['failed'][name]}")
                continue
            live.append((name, prep, number))
            result["contenders"][name] = {"times_s": [], "calls_per_round": number,
                                          "scale": prep.scale, "note": prep.note}
        for r in range(rounds):
            m = len(live)
            for name, prep, number in (live[r % m:] + live[:r % m]) if m else []:
                if name in result["failed"]:
                    continue
                try:
                    state = prep.setup()
                    gc.collect()
                    t0 = time.perf_counter()
                    for _ in range(number):
                        prep.run(state)
                    seconds = (time.perf_counter() - t0) / number * prep.scale
                except Exception as exc:
                    result["failed"][name] = f"{type(exc).__name__}: {exc}"
                    log(f"  FAILED {name}: {result['failed'][name]}")
                    continue
                result["contenders"][name]["times_s"].append(seconds)
    for name in result["failed"]:
        result["contenders"].pop(name, None)
    for c in result["contenders"].values():
        c["median_s"] = statistics.median(c["times_s"]) if c["times_s"] else None
    return result


def ratios(result):
    """fastrbm's median over each other contender's median (< 1: fastrbm faster)."""
    cs = result["contenders"]
    fast = cs.get("fastrbm", {}).get("median_s")
    out = {}
    for name, c in cs.items():
        if name != "fastrbm":
            out[name] = fast / c["median_s"] if fast and c.get("median_s") else None
    return out


def find_case(results, **want):
    for r in results:
        if all(r["case"].get(k) == v for k, v in want.items()):
            return r
    return None


def median_of(result, name):
    if result is None:
        return None
    return result["contenders"].get(name, {}).get("median_s")


def evaluate_targets(results, threads_all):
    """Where each target stands, computed only from ``results``."""
    base = dict(op="cd_epoch", dtype="float32", hidden=500, k=1, tag="target")
    b100 = find_case(results, batch=100, threads=threads_all, **base)
    b10 = find_case(results, batch=10, threads=threads_all, **base)
    t1 = find_case(results, batch=100, threads=1, **base)
    t2 = find_case(results, batch=100, threads=2, **base)
    out = []
    for spec in TARGETS:
        measured, context, case = None, "", None
        if spec["id"] == "floor" and b100:
            case = b100
            f, fl = median_of(b100, "fastrbm"), median_of(b100, "floor")
            if f and fl:
                measured = f / fl
                context = f"fastrbm {fmt_s(f)}, floor {fmt_s(fl)}"
        elif spec["id"] in ("sklearn100", "sklearn10"):
            case = b100 if spec["id"] == "sklearn100" else b10
            f, sk, fl = (median_of(case, n) for n in ("fastrbm", "sklearn", "floor"))
            if f and sk:
                measured = sk / f
                context = f"fastrbm {fmt_s(f)}, scikit-learn {fmt_s(sk)}"
                if fl:
                    # no implementation doing these GEMMs at the floor's speed
                    # can be faster than this relative to scikit-learn
                    context += (f"; scikit-learn / floor = {sk / fl:.2f}x (the speed-up of "
                                "an implementation running at the floor)")
        elif spec["id"] == "threads" and t1 and t2 and threads_all >= 2:
            case = t2
            a, b = median_of(t1, "fastrbm"), median_of(t2, "fastrbm")
            if a and b:
                measured = a / (2 * b)
                context = f"fastrbm {fmt_s(a)} at 1 thread, {fmt_s(b)} at 2"
                fa, fb = median_of(t1, "floor"), median_of(t2, "floor")
                if fa and fb:
                    context += (f"; the floor's own efficiency (NumPy BLAS, same GEMMs): "
                                f"{fa / (2 * fb):.0%}")
        if measured is None:
            status = "not measured"
        else:
            ok = measured <= spec["threshold"] if spec["kind"] == "le" else \
                measured >= spec["threshold"]
            status = "met" if ok else "missed"
        n = case["case"]["n_samples"] if case else None
        if case is not None and n != TARGET_ROWS:
            context += (f"; measured on {n} rows, not the target's {TARGET_ROWS}: "
                        "not a verdict on the target")
        out.append({"id": spec["id"], "what": spec["what"], "threshold": spec["threshold"],
                    "kind": spec["kind"], "measured": measured, "status": status,
                    "case": case["label"] if case else None, "context": context.lstrip("; ")})
    return out


SCALING_THREADS = (1, 2, 4, 8, 16)


def measure_scaling(settings, data, threads_all, rounds, min_time, log=print):
    """Epoch time (fastrbm CD-1 and the floor, float32, batch 100) against rows,
    hidden units and threads."""
    import suite

    base = suite.Case("cd_epoch", threads=threads_all, contenders=("fastrbm", "floor"))
    out = {"rows": [], "hidden": [], "threads": []}
    for n in settings["scaling_rows"]:
        case = dataclasses.replace(base, n_samples=n)
        log(f"scaling: {case.label}")
        out["rows"].append(measure_case(case, data, rounds, min_time, log))
    for h in settings["scaling_hidden"]:
        case = dataclasses.replace(base, hidden=h, n_samples=settings["scaling_hidden_rows"])
        log(f"scaling: {case.label}")
        out["hidden"].append(measure_case(case, data, rounds, min_time, log))
    # 1, 2, 4, 8, 16 threads where the machine has them (issue 19), and all
    counts = sorted({t for t in SCALING_THREADS if t <= threads_all} | {threads_all})
    out["threads_skipped"] = [t for t in SCALING_THREADS if t > threads_all]
    if out["threads_skipped"]:
        log(f"scaling: thread counts {out['threads_skipped']} skipped: this machine has "
            f"{threads_all} CPUs")
    for t in counts:
        case = dataclasses.replace(base, threads=t, n_samples=settings["scaling_thread_rows"])
        log(f"scaling: {case.label}")
        out["threads"].append(measure_case(case, data, rounds, min_time, log))
    return out


def measure_memory(rows_list, threads, log=print):
    """Peak RSS growth of ``fit`` on uint8 input against rows (bench_memory.py's
    child process: VmHWM reset just before the fit where Linux allows it)."""
    import bench_memory

    out = []
    for n in rows_list:
        log(f"memory: uint8, {n} rows")
        args = argparse.Namespace(n_samples=n, threads=threads)
        try:
            r = bench_memory.run_child("uint8", args, reset=True)
        except Exception as exc:
            out.append({"n_samples": n, "error": f"{type(exc).__name__}: {exc}"})
            continue
        b, a = r["before"], r["after"]
        growth = (a["ru_maxrss_kb"] - b["ru_maxrss_kb"]) * 1024
        if r["peak_reset_ok"] and a["VmHWM_kb"] is not None:
            growth = max(growth, (a["VmHWM_kb"] - b["VmRSS_kb"]) * 1024)
        out.append({"n_samples": n, "growth_bytes": growth,
                    "expected_bytes": sum(r["expected"].values()),
                    "data_bytes": r["data_bytes"], "float32_copy_bytes": r["float32_copy_bytes"],
                    "peak_reset_ok": r["peak_reset_ok"], "error": r["error"]})
    return out


# ------------------------------------------------------------------ reporting
def fmt_s(x):
    """Seconds with a unit that keeps 3-4 significant digits."""
    if x is None:
        return "–"
    if x >= 1:
        return f"{x:.3f} s"
    if x >= 1e-3:
        return f"{x * 1e3:.2f} ms"
    return f"{x * 1e6:.1f} µs"


def fmt_ratio(x):
    return "–" if x is None else f"{x:.2f}"


def machine_description(threads_all):
    """CPU, cores, BLAS and OpenMP libraries with their threads, versions."""
    from bench_cd_epoch import machine_info

    info = machine_info(threads_all, None)
    info.pop("data", None)
    info["threads"] = f"1 and {threads_all} (per case)"
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["torch_blas"] = "MKL" if torch.backends.mkl.is_available() else "other"
    except Exception as exc:
        info["torch"] = f"not available ({type(exc).__name__}: {exc})"
    return info


def markdown(report):
    """The results as Markdown (the file and the README section)."""
    m, cfg = report["machine"], report["config"]
    out = [f"## Benchmark results: profile `{cfg['profile']}` ({m['date']})", ""]
    out.append(f"`python benchmarks/run.py --profile {cfg['profile']}`; {cfg['rounds']} "
               f"interleaved rounds per case ({cfg['target_rounds']} for the target cases), "
               f"medians; ratios are fastrbm's median over the other contender's median "
               f"in the same case (below 1: fastrbm is faster).  Data: {report['data']}.")
    if cfg["profile"] != "full":
        out += ["", f"**Profile `{cfg['profile']}`: a smoke run on small sizes, not a "
                "measurement of the targets.**"]
    load = m.get("load_average_at_start")
    if load and load[0] > 0.5:
        out += ["", f"Load average at start: {', '.join(f'{x:.2f}' for x in load)} (the "
                "machine was not quiet; multithreaded timings suffer most)."]
    out += ["", "### Targets", "",
            "| target | case | measured | threshold | status | context |",
            "|---|---|---:|---:|---|---|"]
    for t in report["targets"]:
        measured = "–" if t["measured"] is None else (
            f"{t['measured']:.0%}" if t["id"] == "threads" else f"{t['measured']:.2f}x")
        thr = f"{t['threshold']:.0%}" if t["id"] == "threads" else f"{t['threshold']}x"
        status = t["status"] if t["status"] != "missed" else "**missed**"
        out.append(f"| {t['what']} | {t['case'] or '–'} | {measured} | "
                   f"{'<=' if t['kind'] == 'le' else '>='} {thr} | {status} | {t['context']} |")
    by_op = {}
    for r in report["results"]:
        by_op.setdefault(r["op"], []).append(r)
    for op, rs in by_op.items():
        names = [n for n in ("fastrbm", "reference", "sklearn", "torch", "floor")
                 if any(n in r["contenders"] or n in r["skipped"] for r in rs)]
        others = [n for n in names if n != "fastrbm"]
        out += ["", f"### {op}", "",
                "| case | " + " | ".join(names) + " | "
                + " | ".join(f"fastrbm / {n}" for n in others) + " |",
                "|---|" + "---:|" * (len(names) + len(others))]
        notes, skipped = {}, {}
        for r in rs:
            rat = ratios(r)
            cells = []
            for n in names:
                c = r["contenders"].get(n)
                cells.append(fmt_s(c["median_s"]) + (" (scaled)" if c["scale"] != 1 else "")
                             if c else ("failed" if n in r["failed"] else "–"))
                if c:
                    notes.setdefault(n, c["note"].split(" on ")[0])
                elif n in r["skipped"]:
                    skipped.setdefault(n, r["skipped"][n])
            cells += [fmt_ratio(rat.get(n)) for n in others]
            tag = " (target)" if r["case"].get("tag") == "target" else ""
            out.append(f"| {r['label']}{tag} | " + " | ".join(cells) + " |")
        out.append("")
        for n, note in notes.items():
            out.append(f"- {n}: {note}")
        for n, why in skipped.items():
            out.append(f"- {n} not run where shown –: {why}")
        for r in rs:
            for n, err in r["failed"].items():
                out.append(f"- **FAILED**: {n} on {r['label']}: {err}")
    out += scaling_markdown(report.get("scaling"), report.get("memory"))
    out += ["", "### Machine", ""]
    out.append(f"- CPU: {m['cpu_model']}, {m['cpu_count']} logical CPUs "
               f"({m['cpus_usable']} usable); {m['platform']}; Python {m['python']}")
    out.append(f"- numpy {m['numpy']}, scipy {m['scipy']}, scikit-learn {m['sklearn']}, "
               f"fastrbm {m['fastrbm']} (OpenMP {m['fastrbm_openmp']}, sampling "
               f"{m['fastrbm_simd']}), torch {m.get('torch')}"
               + (f" ({m['torch_blas']}, {m['torch_threads']} threads by default)"
                  if "torch_threads" in m else ""))
    out.append(f"- threads: {m['threads']}")
    for lib in m["blas"]:
        out.append(f"- BLAS: {lib['internal_api']} {lib['version']} ({lib['architecture']}, "
                   f"num_threads={lib['num_threads']} outside the cases) {lib['filepath']}")
    for lib in m["openmp_runtimes"]:
        out.append(f"- OpenMP runtime: {lib['internal_api']} {lib['filepath']}")
    env = ", ".join(f"{k}={v}" for k, v in m["env"].items()) or "none set"
    end = m.get("load_average_at_end")
    out.append(f"- environment: {env}; load average at start "
               f"{', '.join(f'{x:.2f}' for x in load) if load else '–'}, at the end "
               f"{', '.join(f'{x:.2f}' for x in end) if end else '–'}")
    out.append(f"- wall time of the run: {report['wall_s']:.0f} s")
    return "\n".join(out) + "\n"


def scaling_markdown(scaling, memory):
    out = []
    if scaling:
        out += ["", "### Scaling: CD-1 epoch, float32, batch 100", "",
                "| rows | hidden | threads | fastrbm | floor | fastrbm / floor |",
                "|---:|---:|---:|---:|---:|---:|"]
        for axis in ("rows", "hidden", "threads"):
            for r in scaling[axis]:
                c = r["case"]
                out.append(f"| {c['n_samples']} | {c['hidden']} | {c['threads']} | "
                           f"{fmt_s(median_of(r, 'fastrbm'))} | {fmt_s(median_of(r, 'floor'))} "
                           f"| {fmt_ratio(ratios(r).get('floor'))} |")
        eff = thread_efficiency(scaling)
        if eff:
            out += ["", "Parallel efficiency t(1) / (p t(p)):", ""]
            for p, e in eff.items():
                out.append(f"- {p} threads: fastrbm {fmt_pct(e['fastrbm'])}, "
                           f"floor {fmt_pct(e['floor'])}")
        if scaling.get("threads_skipped"):
            out.append(f"- {', '.join(map(str, scaling['threads_skipped']))} threads: skipped "
                       f"(more than this machine's CPUs)")
    if memory:
        out += ["", "### Peak memory of fit, uint8 input, 500 hidden, batch 100", "",
                "| rows | peak RSS growth (MB) | expected buffers (MB) | data, uint8 (MB) | "
                "data as float32 (MB) |", "|---:|---:|---:|---:|---:|"]
        for r in memory:
            if r.get("error") or "growth_bytes" not in r:
                out.append(f"| {r['n_samples']} | failed: {r.get('error')} | | | |")
                continue
            out.append(f"| {r['n_samples']} | {r['growth_bytes'] / 1e6:.1f} | "
                       f"{r['expected_bytes'] / 1e6:.1f} | {r['data_bytes'] / 1e6:.1f} | "
                       f"{r['float32_copy_bytes'] / 1e6:.1f} |")
    return out


def fmt_pct(x):
    return "–" if x is None else f"{x:.0%}"


def thread_efficiency(scaling):
    """{p: {contender: t(1) / (p t(p))}} from the threads axis of the scaling."""
    by_t = {r["case"]["threads"]: r for r in scaling.get("threads", [])}
    if 1 not in by_t:
        return {}
    out = {}
    for p, r in by_t.items():
        if p == 1:
            continue
        out[p] = {}
        for name in ("fastrbm", "floor"):
            a, b = median_of(by_t[1], name), median_of(r, name)
            out[p][name] = a / (p * b) if a and b else None
    return out


def plot(report, path):
    """Four panels: time vs rows, vs hidden, efficiency vs threads, memory vs rows."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    scaling, memory = report.get("scaling") or {}, report.get("memory") or []
    fig, axes = plt.subplots(2, 2, figsize=(10, 8))
    for ax, axis, xlabel in ((axes[0, 0], "rows", "rows (n_samples)"),
                             (axes[0, 1], "hidden", "hidden units")):
        rs = scaling.get(axis, [])
        key = "n_samples" if axis == "rows" else "hidden"
        for name, style in (("fastrbm", "o-"), ("floor", "s--")):
            pts = [(r["case"][key], median_of(r, name)) for r in rs if median_of(r, name)]
            if pts:
                ax.plot(*zip(*pts), style, label=name)
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="seconds per epoch",
               title=f"CD-1 epoch vs {axis}")
        ax.legend()
    eff = thread_efficiency(scaling)
    ax = axes[1, 0]
    if eff:
        ps = sorted(eff)
        for i, name in enumerate(("fastrbm", "floor")):
            ax.bar([j + 0.4 * i for j in range(len(ps))],
                   [eff[p][name] or 0 for p in ps], width=0.4, label=name)
        ax.set_xticks([j + 0.2 for j in range(len(ps))], [str(p) for p in ps])
        ax.axhline(0.85, color="k", ls=":", label="85% target")
        ax.legend()
    ax.set(xlabel="threads", ylabel="t(1) / (p t(p))", title="parallel efficiency",
           ylim=(0, 1.1))
    ax = axes[1, 1]
    ok = [r for r in memory if "growth_bytes" in r]
    if ok:
        n = [r["n_samples"] for r in ok]
        ax.plot(n, [r["growth_bytes"] / 1e6 for r in ok], "o-", label="peak RSS growth of fit")
        ax.plot(n, [r["expected_bytes"] / 1e6 for r in ok], "s--", label="expected buffers")
        ax.plot(n, [r["data_bytes"] / 1e6 for r in ok], ":", label="the data (uint8)")
        ax.legend()
    ax.set(xlabel="rows (uint8 input)", ylabel="MB", title="peak memory of fit")
    fig.suptitle(f"fastrbm scaling, profile {report['config']['profile']}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def update_readme(section, path=README):
    """Replace the text between the marker comments (append them if absent)."""
    with open(path) as f:
        text = f.read()
    block = f"{BEGIN_MARK}\n{section.rstrip()}\n{END_MARK}"
    if BEGIN_MARK in text and END_MARK in text:
        head, rest = text.split(BEGIN_MARK, 1)
        tail = rest.split(END_MARK, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def write_outputs(report, out_dir):
    """``<profile>.json``, ``<profile>.md`` and the plot; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    profile = report["config"]["profile"]
    paths = {"json": os.path.join(out_dir, f"{profile}.json"),
             "md": os.path.join(out_dir, f"{profile}.md")}
    with open(paths["json"], "w") as f:
        json.dump(report, f, indent=1)
    png = plot(report, os.path.join(out_dir, f"{profile}_scaling.png")) \
        if report.get("scaling") or report.get("memory") else None
    md = markdown(report)
    if png:
        md += f"\n![scaling]({os.path.relpath(png, out_dir)})\n"
        paths["png"] = png
    with open(paths["md"], "w") as f:
        f.write(md)
    return paths, md


# ----------------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    p.add_argument("--output-dir", default=os.path.join(HERE, "results"))
    p.add_argument("--update-readme", action="store_true",
                   help="also write the results into benchmarks/README.md between the markers")
    p.add_argument("--only", nargs="*", help="run only these operations (no targets/scaling "
                   "unless cd_epoch is among them)")
    p.add_argument("--rounds", type=int, help="override the profile's rounds")
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--list", action="store_true", help="print the cases and exit")
    args = p.parse_args(argv)

    import suite

    settings = dict(PROFILES[args.profile])
    if args.rounds:
        settings["rounds"] = settings["target_rounds"] = args.rounds
    T = suite.all_threads()
    cases = suite.profile_cases(args.profile, T)
    if args.only:
        cases = [c for c in cases if c.op in args.only]
    if args.list:
        for c in cases:
            print(f"{c.key}  [{', '.join(c.contenders)}]{' target' if c.tag else ''}")
        print(f"{len(cases)} cases")
        return 0

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    start = time.perf_counter()
    load_at_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    n_max = max([c.n_samples for c in cases] + settings["scaling_rows"]
                + [settings["scaling_hidden_rows"], settings["scaling_thread_rows"], 1000])
    data = suite.Data(n_max)
    log(f"data: {data.description}")
    results = []
    for i, case in enumerate(cases):
        log(f"[{i + 1}/{len(cases)}] {case.key} ({time.perf_counter() - start:.0f} s)")
        rounds = settings["target_rounds"] if case.tag == "target" else settings["rounds"]
        results.append(measure_case(case, data, rounds, settings["min_time"], log))
    scaling = memory = None
    if not args.no_scaling and (not args.only or "cd_epoch" in args.only):
        scaling = measure_scaling(settings, data, T, settings["rounds"], settings["min_time"],
                                  log)
    if not args.no_memory and (not args.only or "cd_epoch" in args.only):
        memory = measure_memory(settings["memory_rows"], T, log)
    # described after the run, so that every library the contenders loaded is listed
    machine = machine_description(T)
    machine["load_average_at_start"] = load_at_start
    machine["load_average_at_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    report = {
        "config": {"profile": args.profile, "rounds": settings["rounds"],
                   "target_rounds": settings["target_rounds"], "min_time_s": settings["min_time"],
                   "threads_all": T,
                   "date": datetime.datetime.now().isoformat(timespec="seconds")},
        "machine": machine,
        "data": data.description,
        "results": results,
        "targets": evaluate_targets(results, T),
        "scaling": scaling,
        "memory": memory,
        "wall_s": time.perf_counter() - start,
    }
    paths, md = write_outputs(report, args.output_dir)
    if args.update_readme:
        update_readme(md.replace(f"]({os.path.basename(paths.get('png', ''))})",
                                 f"](results/{os.path.basename(paths.get('png', ''))})"))
    print(md)
    log(f"wrote {', '.join(paths.values())}" + (" and README.md" if args.update_readme else "")
        + f" in {report['wall_s']:.0f} s")
    failed = [(r["label"], n) for r in results for n in r["failed"]]
    if failed:
        log(f"{len(failed)} contender(s) failed: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
