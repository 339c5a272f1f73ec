"""Two builds of fastrbm against each other: the CD-1 epoch and AIS kernels.

Usage::

    python benchmarks/bench_builds.py OLD_SRC NEW_SRC [--pairs 4] [--repeats 3]
                                      [--rows 20000] [--threads 2]

OLD_SRC and NEW_SRC are ``src`` folders of two checkouts with their compiled
modules built in place.  Each pair of rounds runs one fresh process per build
(old first, then new), each timing ``--repeats`` CD-1 epochs (784-500,
batch 100, float32, ``--rows`` Fashion-MNIST rows, ``--threads`` OpenMP
threads, wall time) and AIS (100 chains x 300 temperatures, the same model
size, one thread, CPU time); the medians over all rounds and their ratio
are printed.  Used for the redesign (issue 15), whose modules moved
between the two builds: the engine is taken from ``fastrbm._cpu`` where it
exists, else ``fastrbm._gibbs``.
"""
import argparse
import os
import subprocess
import sys

import numpy as np

WORKER = r"""
import sys, time, types
import numpy as np
try:
    from fastrbm import _cpu as engine
except ImportError:
    from fastrbm import _gibbs as engine
from fastrbm._backend import kernel_threads
sys.path.insert(0, sys.argv[4])
from datasets import load_training_data
rows, repeats, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
X, _ = load_training_data(rows)
n, D = X.shape
H, B = 500, 100
rng = np.random.default_rng(0)
config = types.SimpleNamespace(k=1, persistent=False, learning_rate=0.01, momentum=0.0,
                               weight_decay=0.0, l1=0.0, sparsity_target=0.1,
                               sparsity_cost=0.0, sparsity_decay=0.9)
key = np.array([1, 2], np.uint32)
W0 = (0.01 * rng.standard_normal((H, D))).astype(np.float32)
order = rng.permutation(n).astype(np.intp)
cd, ais = [], []
with kernel_threads():
    for _ in range(repeats):
        W, vb, hb = W0.copy(), np.zeros(D, np.float32), np.zeros(H, np.float32)
        workspace = engine.make_workspace(D, H, B, np.float32)
        activity = np.zeros(H, np.float32)
        start = time.perf_counter()
        engine.cd_update(X, order, B, W, vb, hb, None, None, None, None, activity, workspace,
                         config, key, 0, threads)
        cd.append(time.perf_counter() - start)
        start = time.process_time()
        engine.ais_log_weights(W, vb, hb, np.zeros(D, np.float32), np.linspace(0, 1, 300),
                               100, key, 1)
        ais.append(time.process_time() - start)
print(" ".join(map(repr, cd)), "|", " ".join(map(repr, ais)))
"""


def run(src, args):
    env = dict(os.environ, PYTHONPATH=src)
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-c", WORKER, str(args.rows), str(args.repeats),
                          str(args.threads), here], env=env, capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    cd, ais = out.split("|")
    return [float(x) for x in cd.split()], [float(x) for x in ais.split()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old_src")
    parser.add_argument("new_src")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    times = {"old": ([], []), "new": ([], [])}
    for _ in range(args.pairs):
        for name, src in (("old", args.old_src), ("new", args.new_src)):
            cd, ais = run(src, args)
            times[name][0].extend(cd)
            times[name][1].extend(ais)
    for i, what in enumerate((f"CD-1 epoch, {args.rows} rows, {args.threads} threads, wall",
                              "AIS 100 x 300, 1 thread, CPU time")):
        old, new = np.median(times["old"][i]), np.median(times["new"][i])
        print(f"{what}: old {old:.3f} s, new {new:.3f} s, new / old {new / old:.2f} "
              f"(ranges {min(times['old'][i]):.3f}-{max(times['old'][i]):.3f}, "
              f"{min(times['new'][i]):.3f}-{max(times['new'][i]):.3f})")


if __name__ == "__main__":
    main()
