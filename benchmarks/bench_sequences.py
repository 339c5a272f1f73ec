"""fastrbm.sequences on a real alignment: reading, sequence weights, pair statistics.

    python benchmarks/bench_sequences.py --data ../shared/data/kunitz/Kunitz_domain_MSA.fasta

On the Kunitz domain alignment (PF00014, 11,819 x 53, q = 21) it times, in
interleaved rounds (each round runs every contender once, in turn, so that a
change of machine load hits them all alike), the median over ``--repeats``
rounds of:

* ``read_alignment`` of the file;
* ``sequence_weights`` (identity 0.8) with 1 thread and with ``--threads``;
* a plain NumPy version of the same weights (rows compared in blocks against
  the whole alignment), which must give the same weights;
* ``connected_correlations`` (weighted) with ``--threads``, and the NumPy way
  to the same two-site frequencies, a one-hot matrix product ``X^T diag(w) X``
  (BLAS, its default threads), which must agree to rounding.

Prints one Markdown table (wall seconds, median and min, the ratio to the
fastest contender of its group, and the median CPU seconds of the process,
all threads together: on a loaded machine wall time grows with the load, CPU
time much less) and the effective number of sequences.
"""
import argparse
import os
import statistics
import time

import numpy as np

from fastrbm.sequences import (connected_correlations, read_alignment, sequence_weights,
                               site_frequencies)

DEFAULT_DATA = os.path.join("..", "shared", "data", "kunitz", "Kunitz_domain_MSA.fasta")


def weights_numpy(codes, identity, block=64):
    """Identity-rule weights by blocks of rows compared with the whole alignment."""
    n, n_sites = codes.shape
    counts = np.empty(n, dtype=np.int64)
    for start in range(0, n, block):
        same = (codes[start:start + block, None, :] == codes[None, :, :]).sum(axis=2)
        counts[start:start + block] = (same / n_sites >= identity).sum(axis=1)
    return 1.0 / counts


def correlations_numpy(codes, q, w):
    """Connected correlations from a one-hot matrix product, as (n_pairs, q, q)."""
    n, n_sites = codes.shape
    onehot = np.zeros((n, n_sites * q))
    onehot[np.arange(n)[:, None], np.arange(n_sites) * q + codes] = 1.0
    wsum = w.sum()
    f1 = (w @ onehot) / wsum
    f2 = (onehot.T * w) @ onehot / wsum
    a, b = np.triu_indices(n_sites, k=1)
    f2 = f2.reshape(n_sites, q, n_sites, q)[a, :, b, :]
    f1 = f1.reshape(n_sites, q)
    return f2 - f1[a, :, None] * f1[b, None, :]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="aligned FASTA file")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (median over them)")
    parser.add_argument("--threads", type=int, default=2, help="threads of the parallel runs")
    parser.add_argument("--identity", type=float, default=0.8)
    parser.add_argument("--skip-numpy", action="store_true",
                        help="leave out the (slow) NumPy contenders")
    args = parser.parse_args()

    alignment = read_alignment(args.data)
    codes, q = alignment.codes, len(alignment.alphabet)
    print(f"{args.data}: {codes.shape[0]} sequences x {codes.shape[1]} sites, q = {q}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")

    weights = sequence_weights(codes, args.identity)
    contenders = {
        "read_alignment": ("read", lambda: read_alignment(args.data)),
        "sequence_weights, 1 thread": (
            "weights", lambda: sequence_weights(codes, args.identity, n_jobs=1)),
        f"sequence_weights, {args.threads} threads": (
            "weights", lambda: sequence_weights(codes, args.identity, n_jobs=args.threads)),
        f"connected_correlations, {args.threads} threads": (
            "pairs", lambda: connected_correlations(codes, q, weights, n_jobs=args.threads)),
    }
    if not args.skip_numpy:
        contenders["NumPy weights (blocks of 64 rows)"] = (
            "weights", lambda: weights_numpy(codes, args.identity))
        contenders["NumPy one-hot GEMM correlations"] = (
            "pairs", lambda: correlations_numpy(codes, q, weights))
        same = np.array_equal(weights_numpy(codes, args.identity), weights)
        gap = np.abs(correlations_numpy(codes, q, weights)
                     - connected_correlations(codes, q, weights)).max()
        print(f"NumPy weights identical: {same}; correlations max |difference| {gap:.1e}")
        if not same or gap > 1e-12:
            raise SystemExit("the NumPy contenders disagree with fastrbm.sequences")

    times = {name: [] for name in contenders}
    cpu = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, (_, func) in contenders.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            func()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)

    best = {}
    for name, (group, _) in contenders.items():
        best[group] = min(best.get(group, np.inf), statistics.median(times[name]))
    print(f"\nmedian of {args.repeats} interleaved rounds; load average "
          f"{os.getloadavg()[0]:.2f} at the end\n")
    print("| operation | median s | min s | x fastest of its group | CPU s (all threads) |")
    print("|---|---:|---:|---:|---:|")
    for name, (group, _) in contenders.items():
        med = statistics.median(times[name])
        print(f"| {name} | {med:.4f} | {min(times[name]):.4f} | {med / best[group]:.1f} | "
              f"{statistics.median(cpu[name]):.4f} |")
    f1 = site_frequencies(codes, q, weights)
    print(f"\neffective sequences (sum of weights at identity {args.identity}): "
          f"{weights.sum():.1f}; gap frequency {f1[:, -1].mean():.3f}")


if __name__ == "__main__":
    main()
