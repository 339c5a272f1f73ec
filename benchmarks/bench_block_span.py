"""Epoch time against the width of the training blocks (the parallel decomposition).

Usage::

    python benchmarks/bench_block_span.py --n-samples 30000 --batch-size 100 --spans 128,256,512

Synthetic binary data (784 features, density 0.3), 500 hidden units, CD-1,
float32, ``--threads`` threads; the spans (units per pair of blocks, forced
with ``fastrbm._layout._set_block_span``) run interleaved for ``--repeats``
rounds and the median epoch time of each is printed.  Span 0 is the automatic
choice.  Two threads are used even for small minibatches here.
"""
import argparse
import time

import numpy as np

import fastrbm._backend as backend
from fastrbm import BernoulliRBM, _layout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=30000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--spans", default="0,128,256,512,1024")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    spans = [int(s) for s in args.spans.split(",")]
    backend.MIN_WORK_PER_THREAD = 1
    X = (np.random.default_rng(0).random((args.n_samples, 784)) < 0.3).astype(np.float32)
    model = BernoulliRBM(n_components=500, batch_size=args.batch_size, n_iter=0, method="cd",
                         learning_rate=0.05, random_state=0, n_jobs=args.threads).fit(X)
    X_checked = model._validate(X, reset=False)
    workspace = model._workspace(X_checked)
    order = np.arange(args.n_samples, dtype=np.intp)
    times = {span: [] for span in spans}
    for _ in range(args.repeats):
        for span in spans:
            _layout._set_block_span(span)
            start = time.perf_counter()
            model._run_updates(X_checked, order, workspace, 0)
            times[span].append(time.perf_counter() - start)
    _layout._set_block_span(0)
    print(f"batch {args.batch_size}, {args.n_samples} rows, {args.threads} threads")
    for span, values in times.items():
        label = "auto" if span == 0 else span
        print(f"span {label:>5}: median {np.median(values):.3f} s  "
              f"({', '.join(f'{v:.3f}' for v in values)})")


if __name__ == "__main__":
    main()
