"""Threads on a busy machine: default threading against ``n_jobs=1``.

Usage::

    python benchmarks/bench_threads.py --rounds 3 --markdown threads.md

For each case the script times a default-threaded run (``n_jobs=None``)
and a single-threaded one (``n_jobs=1``), on a quiet machine and with
``--load`` CPU-bound processes (plain Python busy loops, default 2) running
beside it.  Each timing is a fresh interpreter (``import fastrbm`` sets the
OpenMP wait policy as its runtime starts, so it must be a new process); the
contenders run interleaved (round r starts at contender r), and the table
gives the median over the rounds and the ratio default / ``n_jobs=1`` from
those medians.  ``--active`` adds the same two runs with
``OMP_WAIT_POLICY=active`` (the OpenMP runtime's spinning default, which
fastrbm replaced by passive waiting) to show what the policy changes.

Cases (``--cases``):

* ``rbm-digits``: ``BernoulliRBM(random_state=0).fit(X)`` on scikit-learn's
  digits scaled by MinMaxScaler (1797 x 64), defaults otherwise.
* ``dbn-iris``: ``DBNClassifier(random_state=0).fit(X, y)`` on iris scaled by
  MinMaxScaler, defaults otherwise.
* ``cd1-fashion``: one CD-1 epoch of the engine (``model._run_updates``) on
  Fashion-MNIST 60000 x 784 uint8 (synthetic data of the same shape if the
  Debian package is missing), 500 hidden, batch 100, float32.

Only the call named is timed (``time.perf_counter`` around it, after an
untimed warm-up call in the same process).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

CASES = {
    "rbm-digits": """
from sklearn.datasets import load_digits
from sklearn.preprocessing import MinMaxScaler
from fastrbm import BernoulliRBM
X = MinMaxScaler().fit_transform(load_digits().data)
def run():
    BernoulliRBM(random_state=0, n_jobs=N_JOBS).fit(X)
""",
    "dbn-iris": """
from sklearn.datasets import load_iris
from sklearn.preprocessing import MinMaxScaler
from fastrbm import DBNClassifier
X, y = load_iris(return_X_y=True)
X = MinMaxScaler().fit_transform(X)
def run():
    DBNClassifier(random_state=0, n_jobs=N_JOBS).fit(X, y)
""",
    "cd1-fashion": """
import numpy as np
from datasets import load_training_data
from fastrbm import BernoulliRBM
X, _ = load_training_data(60000)
model = BernoulliRBM(n_components=500, batch_size=100, n_iter=0, random_state=0,
                     dtype=np.float32, n_jobs=N_JOBS).fit(X)
order = np.arange(X.shape[0], dtype=np.intp)
workspace = model._workspace(X)
def run():
    model._run_updates(X, order, workspace, 0)
""",
}

TIMER = """
import sys, time, warnings
sys.path.insert(0, {here!r})
warnings.simplefilter("ignore")
N_JOBS = {n_jobs}
{setup}
run()
start = time.perf_counter()
run()
print(time.perf_counter() - start)
"""

BUSY = "while True: pass"


def time_once(case, n_jobs, policy):
    env = dict(os.environ)
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"):
        env.pop(name, None)
    if policy == "active":
        env["OMP_WAIT_POLICY"] = "active"
    elif "=" in policy:             # e.g. GOMP_SPINCOUNT=10000
        name, value = policy.split("=", 1)
        env[name] = value
    code = TIMER.format(here=HERE, n_jobs=n_jobs, setup=CASES[case])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def measure(case, contenders, rounds):
    times = {c: [] for c in contenders}
    for r in range(rounds):
        for i in range(len(contenders)):
            contender = contenders[(r + i) % len(contenders)]
            times[contender].append(time_once(case, *contender))
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--load", type=int, default=2,
                        help="CPU-bound processes for the loaded runs (default 2)")
    parser.add_argument("--active", action="store_true",
                        help="also time OMP_WAIT_POLICY=active (the runtime default)")
    parser.add_argument("--env", nargs="*", default=[],
                        help="also time these runtime settings, e.g. GOMP_SPINCOUNT=10000")
    parser.add_argument("--conditions", nargs="+", default=["quiet", "loaded"],
                        choices=["quiet", "loaded"])
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    args = parser.parse_args(argv)

    contenders = [("None", "fastrbm"), ("1", "fastrbm")]
    if args.active:
        contenders += [("None", "active"), ("1", "active")]
    for setting in args.env:
        contenders += [("None", setting), ("1", setting)]
    results = []
    for condition in args.conditions:
        busy = []
        if condition == "loaded":
            busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.load)]
            time.sleep(1.0)
        try:
            for case in args.cases:
                times = measure(case, contenders, args.rounds)
                for (n_jobs, policy), values in times.items():
                    results.append({"case": case, "condition": condition, "n_jobs": n_jobs,
                                    "policy": policy, "times": values,
                                    "median": statistics.median(values)})
                    print(f"{case:12s} {condition:7s} n_jobs={n_jobs:4s} {policy:8s} "
                          f"median {statistics.median(values):8.3f} s  "
                          f"{[round(v, 3) for v in values]}", flush=True)
        finally:
            for process in busy:
                process.kill()
                process.wait()

    def median_of(case, condition, n_jobs, policy):
        for row in results:
            if (row["case"], row["condition"], row["n_jobs"], row["policy"]) == (
                    case, condition, n_jobs, policy):
                return row["median"]
        return None

    policies = list(dict.fromkeys(c[1] for c in contenders))
    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} CPUs; "
             f"{args.rounds} rounds, interleaved; loaded = {args.load} busy processes.", "",
             "| case | condition | policy | default threads (s) | n_jobs=1 (s) | ratio |",
             "|---|---|---|---|---|---|"]
    for case in args.cases:
        for condition in args.conditions:
            for policy in policies:
                default = median_of(case, condition, "None", policy)
                single = median_of(case, condition, "1", policy)
                lines.append(f"| {case} | {condition} | {policy} | {default:.3f} | "
                             f"{single:.3f} | {default / single:.2f} |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(table + "\n")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
