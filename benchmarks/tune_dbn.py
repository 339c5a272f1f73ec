"""DBNClassifier fine-tuning study on Fashion-MNIST, scored on a validation
split of the training set (the test set is not looked at).

The last ``--n-val`` training images are held out; each pretraining setting
is run once on the rest, and every fine-tuning variant starts from a copy of
that pretrained stack (same output-layer initialisation, same seed), so the
variants differ only in their fine-tuning settings.  Variants run in the
order given and the study stops launching new ones once ``--budget-s`` is
spent; each finished variant is appended to ``--output`` (JSON lines) at
once, so an interrupted study keeps what it measured.

    python benchmarks/tune_dbn.py pre10:base:30 pre10:drop0.2:30 --output tune.jsonl
    python benchmarks/tune_dbn.py --device gpu --budget-s 400 --output tune.jsonl

A run is ``STACK:VARIANT:EPOCHS`` with STACK from STACKS (pretraining
settings) and VARIANT from VARIANTS (fine-tuning settings) below; ``--list``
prints them.
The chosen setting is then measured on the test set by ``bench_dbn.py``.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

import fastrbm
from bench_dbn import ROOT, load
from fastrbm import DBNClassifier

# fine-tuning settings (DBNClassifier parameters) against the defaults
VARIANTS = {
    "base": {},
    "drop0.2": {"dropout": 0.2},
    "drop0.5": {"dropout": 0.5},
    "drop0.2-lr0.2": {"dropout": 0.2, "learning_rate": 0.2},
    "drop0.5-lr0.2": {"dropout": 0.5, "learning_rate": 0.2},
    "drop0.2-b64-lr0.2": {"dropout": 0.2, "batch_size": 64, "learning_rate": 0.2},
    "drop0.2-b128-lr0.4": {"dropout": 0.2, "batch_size": 128, "learning_rate": 0.4},
    "b64-lr0.2": {"batch_size": 64, "learning_rate": 0.2},
    "lr0.05": {"learning_rate": 0.05},
    "drop0.2-wd1e-4": {"dropout": 0.2, "weight_decay": 1e-4},
    "drop0.3": {"dropout": 0.3},
    "drop0.3-lr0.2": {"dropout": 0.3, "learning_rate": 0.2},
    "lr0.2": {"learning_rate": 0.2},
    "b128-lr0.4": {"batch_size": 128, "learning_rate": 0.4},
    "b128-lr0.8": {"batch_size": 128, "learning_rate": 0.8},
    "b128-lr1.2": {"batch_size": 128, "learning_rate": 1.2},
    "b128-lr0.8-wd1e-4": {"batch_size": 128, "learning_rate": 0.8, "weight_decay": 1e-4},
    "drop0.2-b128-lr0.8": {"dropout": 0.2, "batch_size": 128, "learning_rate": 0.8},
}

# pretraining settings (rbm_params / layer_input) against the defaults
STACKS = {
    "pre10": {},
    "pre20": {"rbm_params": {"n_iter": 20}},
    "pre5": {"rbm_params": {"n_iter": 5}},
    "pre10-sample": {"layer_input": "sample"},
    "gauss10": {"visible_units": "gaussian"},
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[500, 500, 2000])
    parser.add_argument("--n-val", type=int, default=10000)
    parser.add_argument("runs", nargs="*", default=[f"pre10:{name}:30" for name in VARIANTS],
                        help="STACK:VARIANT:EPOCHS, run in this order (default: every "
                             "variant on pre10 for 30 epochs)")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-s", type=float, default=float("inf"),
                        help="launch no new variant after this many seconds")
    parser.add_argument("--data", default=ROOT)
    parser.add_argument("--output", default=None, help="JSON-lines file to append to")
    parser.add_argument("--list", action="store_true", help="print the variants and stop")
    parser.add_argument("--table", nargs="+", metavar="JSONL",
                        help="print a Markdown table of these study outputs and stop")
    args = parser.parse_args(argv)
    if args.table:
        print(_table(args.table))
        return 0
    if args.list:
        for name, params in {**STACKS, **VARIANTS}.items():
            print(f"{name}: {params}")
        return 0

    runs = [_parse_run(text) for text in args.runs]
    X, y, _, _ = load(args.data, 60000, 1)
    X_fit, y_fit = X[:-args.n_val], y[:-args.n_val]
    X_val, y_val = X[-args.n_val:], y[-args.n_val:]
    if args.device == "gpu":
        import cupy as cp
        X_fit, X_val = cp.asarray(X_fit), cp.asarray(X_val)
    arch = "-".join(map(str, [X.shape[1], *args.layers, 10]))
    print(f"Fashion-MNIST {len(y_fit)} fit / {len(y_val)} validation (training set), "
          f"{arch}, device {args.device}, seed {args.seed}", flush=True)
    fastrbm.show_config()

    stacks = {}
    start_all = time.perf_counter()
    for stack_name, name, epochs in runs:
        if time.perf_counter() - start_all > args.budget_s:
            print(f"budget of {args.budget_s:.0f} s spent: {stack_name}:{name}:{epochs} "
                  f"and later runs not made", flush=True)
            break
        stack_params = STACKS[stack_name]
        if stack_name not in stacks:
            start = time.perf_counter()
            stacks[stack_name] = DBNClassifier(
                tuple(args.layers), max_iter=0, random_state=args.seed, n_jobs=args.n_jobs,
                **stack_params).fit(X_fit, y_fit)
            _sync(args.device)
            print(f"stack {stack_name}: pretrained in {time.perf_counter() - start:.1f} s",
                  flush=True)
        params = {**stack_params, **VARIANTS[name], "max_iter": epochs}
        model = _FromStack(stacks[stack_name], tuple(args.layers), random_state=args.seed,
                           n_jobs=args.n_jobs, **params)
        start = time.perf_counter()
        try:
            model.fit(X_fit, y_fit)
        except ValueError as exc:
            # a diverged variant is a result too; the study goes on
            print(f"{stack_name}:{name}:{epochs}: failed: {exc}", flush=True)
            continue
        _sync(args.device)
        seconds = time.perf_counter() - start
        val_acc = float(model.score(X_val, y_val))
        fit_acc = float(model.score(X_fit, y_fit))
        row = {"stack": stack_name, "variant": name, "epochs": epochs,
               "params": {k: v for k, v in params.items() if k != "rbm_params"},
               "rbm_params": stack_params.get("rbm_params"),
               "validation_accuracy": val_acc, "fit_accuracy": fit_acc,
               "final_loss": model.history_[-1]["loss"] if model.history_ else None,
               "finetune_seconds": seconds, "device": args.device,
               "layers": args.layers, "seed": args.seed}
        print(f"{stack_name}:{name}:{epochs}: validation {val_acc:.4f}, fit {fit_acc:.4f}, "
              f"loss {row['final_loss']:.4f}, {seconds:.1f} s", flush=True)
        if args.output:
            with open(args.output, "a") as f:
                f.write(json.dumps(row) + "\n")
    print(f"study: {time.perf_counter() - start_all:.1f} s on {os.cpu_count()} logical CPUs")
    return 0


def _table(paths):
    """Markdown table of study rows (JSON lines), best mean validation first:
    one line per stack, variant and epochs, each seed and device a column
    entry."""
    groups = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                key = (row["stack"], row["variant"], row["epochs"])
                groups.setdefault(key, []).append(row)
    lines = ["| pretraining | fine-tuning | epochs | validation accuracy (seed, device) | "
             "mean | training-set accuracy | fine-tuning time (s) |",
             "|---|---|---|---|---|---|---|"]
    for (stack, variant, epochs), rows in sorted(
            groups.items(), key=lambda kv: -np.mean([r["validation_accuracy"]
                                                    for r in kv[1]])):
        runs = ", ".join(f"{r['validation_accuracy']:.4f} ({r['seed']}, {r['device']})"
                         for r in rows)
        mean = np.mean([r["validation_accuracy"] for r in rows])
        fit = ", ".join(f"{r['fit_accuracy']:.4f}" for r in rows)
        seconds = ", ".join(f"{r['finetune_seconds']:.0f}" for r in rows)
        lines.append(f"| {stack} | {variant} | {epochs} | {runs} | {mean:.4f} | {fit} | "
                     f"{seconds} |")
    return "\n".join(lines)


def _parse_run(text):
    """'STACK:VARIANT:EPOCHS' as (stack, variant, epochs), checked."""
    parts = text.split(":")
    if len(parts) != 3 or parts[0] not in STACKS or parts[1] not in VARIANTS \
            or not parts[2].isdigit():
        raise SystemExit(f"bad run {text!r}: want STACK:VARIANT:EPOCHS with STACK in "
                         f"{sorted(STACKS)} and VARIANT in {sorted(VARIANTS)}")
    return parts[0], parts[1], int(parts[2])


def _sync(device):
    if device == "gpu":
        import cupy as cp
        cp.cuda.Device().synchronize()


class _FromStack(DBNClassifier):
    """A DBNClassifier whose fit starts from a copy of an already pretrained
    classifier's weights instead of pretraining again (study only)."""

    def __init__(self, stack, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._stack = stack

    def _initial_weights(self, sizes, dtype, X_train_view):
        self.dbn_ = self._stack.dbn_
        self.pretrain_seconds_ = self._stack.pretrain_seconds_
        # the input standardisation of a Gaussian first layer comes with it
        self.input_mean_ = self._stack.input_mean_
        self.input_scale_ = self._stack.input_scale_
        return ([W.copy() for W in self._stack.coefs_],
                [b.copy() for b in self._stack.intercepts_])


if __name__ == "__main__":
    sys.exit(main())
