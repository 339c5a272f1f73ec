"""Test log-likelihood (AIS) of 500-hidden RBMs on Fashion-MNIST.

Usage::

    python benchmarks/bench_ais_loglik.py [--epochs 10] [--n-train 60000] [--n-test 10000]
                                          [--chains 100] [--betas default|N] [--skip-sklearn]
                                          [--only NAME ...] [--visible-bias-base]
                                          [--models-dir DIR]

Trains, for the same number of epochs, 500 hidden units and batch 100
(= 100 persistent chains for PCD): fastrbm CD-1, CD-10 and PCD-10, and
scikit-learn's BernoulliRBM (PCD-1, its only algorithm).  Each variant
carries its own hyperparameters, listed in ``VARIANTS`` below and printed in
the table:

- CD-1, CD-10 and PCD-10: learning rate 0.05 decayed linearly to 0 over the
  run (epoch e, from 0, uses 0.05 * (1 - e / epochs); Tieleman 2008 decayed
  PCD's learning rate the same way), momentum 0.5, weight decay 1e-4
  (Hinton's practical guide).  With a constant 0.05 PCD-10 scored worse
  than CD-1; benchmarks/README.md has the study behind this choice, which
  also measured CD-1 and CD-10 both ways.  ``--schedule constant`` (or
  ``linear``) overrides the fastrbm variants' schedule.
- scikit-learn: learning rate 0.05, its defaults otherwise (no momentum, no
  weight decay, visible biases start at 0, no shuffling).

Data: Fashion-MNIST intensities binarised by sampling (pixel on with
probability intensity / 255, fixed seed), training and test sets.  Each
model's log Z is estimated by AIS (``--chains`` chains; the
Salakhutdinov-Murray schedule unless ``--betas N`` asks for N linear
temperatures), from the same base-rate model (the binarised training data's
means); the table reports the mean test log-likelihood, the forward-reverse
sandwich of log Z (reverse chains from the training rows after 1000 Gibbs
steps: approximate, see ``evaluation.AISResult``), the certified lower
bound, the 95% bracket, any AISWarning, the training time and the AIS time
(forward + reverse).  The scikit-learn model is evaluated by
copying its parameters into a fastrbm model (same energy function).  The
load average before and after the run is printed: the machines are shared,
and times from a loaded machine are upper bounds.

``--visible-bias-base`` runs AIS a second time per model from the base model
DsysDML's ``rbms`` always uses: the model's own visible biases (no weights)
instead of the data's base rates.  ``log_partition_ais`` has no parameter
for that start, so the script swaps ``evaluation._base_visible_bias`` for
that call only; everything else (chains, schedule, seed, reverse chains,
certified bound, warnings) is the library's.  ``--models-dir DIR`` saves
each trained model's parameters there and reuses them on the next run
(the train time then reads "loaded").
"""
import argparse
import contextlib
import os
import sys
import time
import warnings

import numpy as np

from fastrbm import BernoulliRBM, evaluation

try:
    from datasets import read_idx_images
except ImportError:                      # run from the repository root
    from benchmarks.datasets import read_idx_images

ROOT = "/usr/share/datasets/fashion-mnist/"

# Settings shared by every variant.
COMMON = dict(n_components=500, batch_size=100, random_state=0)

# name, library, estimator arguments, learning-rate schedule ('constant' or
# 'linear': epoch e, from 0, uses learning_rate * (1 - e / epochs)).
VARIANTS = [
    ("fastrbm CD-1", "fastrbm",
     dict(method="cd", k=1, learning_rate=0.05, momentum=0.5, weight_decay=1e-4), "linear"),
    ("fastrbm CD-10", "fastrbm",
     dict(method="cd", k=10, learning_rate=0.05, momentum=0.5, weight_decay=1e-4), "linear"),
    ("fastrbm PCD-10", "fastrbm",
     dict(method="pcd", k=10, learning_rate=0.05, momentum=0.5, weight_decay=1e-4), "linear"),
    ("scikit-learn (PCD-1)", "sklearn", dict(learning_rate=0.05), "constant"),
    # only with --only learnergy (pip install learnergy --no-deps; it needs torch)
    ("learnergy (CD-1)", "learnergy", dict(learning_rate=0.1, batch_size=128), "constant"),
]


class LinearDecay:
    """fit() callback: the next epoch uses ``lr0 * (1 - epochs_done / n_epochs)``."""

    def __init__(self, lr0, n_epochs):
        self.lr0, self.n_epochs = lr0, n_epochs

    def __call__(self, model, entry):
        model.learning_rate = self.lr0 * max(0.0, 1 - entry["epoch"] / self.n_epochs)


def describe(library, params, schedule):
    """The hyperparameters of a variant, as one table cell."""
    if library == "sklearn":
        return (f"PCD-1, lr {params['learning_rate']:g} constant, no momentum, "
                f"no weight decay (scikit-learn defaults)")
    if library == "learnergy":
        return (f"CD-1, lr {params['learning_rate']:g} constant, batch "
                f"{params['batch_size']}, no momentum, no weight decay, visible biases "
                f"start at 0 (learnergy defaults)")
    algo = f"{params['method'].upper()}-{params['k']}"
    lr = f"lr {params['learning_rate']:g} " + ("constant" if schedule == "constant"
                                              else "decayed linearly to 0")
    return (f"{algo}, {lr}, momentum {params['momentum']:g}, "
            f"weight decay {params['weight_decay']:g}")


def binarised(path, n, seed):
    X = read_idx_images(path, n)
    rng = np.random.default_rng(seed)
    out = np.empty(X.shape, dtype=np.float32)
    for start in range(0, len(X), 8192):       # chunks: no float64 copy of the data
        part = X[start:start + 8192]
        out[start:start + 8192] = rng.random(part.shape, dtype=np.float32) * 255 < part
    return out


@contextlib.contextmanager
def visible_bias_base():
    """AIS inside this block starts from the model's own visible biases."""
    original = evaluation._base_visible_bias

    def own_biases(bound, data):
        return np.asarray(bound.vbias, dtype=np.float64).copy()

    evaluation._base_visible_bias = own_biases
    try:
        yield
    finally:
        evaluation._base_visible_bias = original


def run_ais(model, X, chains, betas):
    """AISResult, the warnings' messages and the seconds taken."""
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", evaluation.AISWarning)
        result = evaluation.log_partition_ais(model, n_chains=chains, betas=betas,
                                              random_state=0, data=X)
    return result, [str(item.message) for item in caught], time.perf_counter() - t


def cached_train(library, params, schedule, X, epochs, models_dir, name):
    """train(), or the parameters saved by an earlier run in ``models_dir``."""
    if models_dir is None:
        return train(library, params, schedule, X, epochs)
    path = os.path.join(models_dir, name.replace(" ", "_").replace("(", "").replace(")", "")
                        + f"_{len(X)}x{epochs}.npz")
    if os.path.exists(path):
        saved = np.load(path)
        model = BernoulliRBM(n_components=COMMON["n_components"], n_iter=0,
                             random_state=0).fit(X)
        for key in ("components_", "intercept_hidden_", "intercept_visible_"):
            setattr(model, key, saved[key])
        return model, None
    model, seconds = train(library, params, schedule, X, epochs)
    os.makedirs(models_dir, exist_ok=True)
    np.savez(path, components_=model.components_, intercept_hidden_=model.intercept_hidden_,
             intercept_visible_=model.intercept_visible_)
    return model, seconds


def train(library, params, schedule, X, epochs):
    """A fitted fastrbm model (scikit-learn's parameters copied into one) and its fit time."""
    if library == "sklearn":
        from sklearn.neural_network import BernoulliRBM as SkRBM

        sk = SkRBM(n_iter=epochs, **COMMON, **params)
        t = time.perf_counter()
        sk.fit(X)
        seconds = time.perf_counter() - t
        model = BernoulliRBM(n_components=COMMON["n_components"], n_iter=0,
                             random_state=0).fit(X)
        model.components_ = sk.components_.astype(np.float32)
        model.intercept_hidden_ = sk.intercept_hidden_.astype(np.float32)
        model.intercept_visible_ = sk.intercept_visible_.astype(np.float32)
        return model, seconds
    if library == "learnergy":
        return train_learnergy(params, X, epochs)
    model = BernoulliRBM(n_iter=epochs, **COMMON, **params)
    callbacks = None
    if schedule == "linear":
        callbacks = LinearDecay(params["learning_rate"], epochs)
    elif schedule != "constant":
        raise ValueError(f"unknown schedule {schedule!r}")
    t = time.perf_counter()
    model.fit(X, callbacks=callbacks)
    seconds = time.perf_counter() - t
    model.learning_rate = params["learning_rate"]     # the callback changed it
    return model, seconds


def train_learnergy(params, X, epochs):
    """learnergy's Bernoulli RBM (its CD-1 with SGD on the free-energy
    difference), parameters copied into a fastrbm model."""
    import torch
    from learnergy.models.bernoulli.rbm import RBM

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    rbm = RBM(n_visible=X.shape[1], n_hidden=COMMON["n_components"], steps=1,
              learning_rate=params["learning_rate"])
    data = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.zeros(len(X)))
    t = time.perf_counter()
    rbm.fit(data, batch_size=params["batch_size"], epochs=epochs)
    seconds = time.perf_counter() - t
    model = BernoulliRBM(n_components=COMMON["n_components"], n_iter=0, random_state=0).fit(X)
    model.components_ = rbm.W.detach().numpy().T.astype(np.float32).copy()
    model.intercept_hidden_ = rbm.b.detach().numpy().astype(np.float32).copy()
    model.intercept_visible_ = rbm.a.detach().numpy().astype(np.float32).copy()
    return model, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--betas", default="default")
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--only", nargs="+", default=None,
                        help="run only these variants: full names or a word of them "
                             "(CD-1, CD-10, PCD-10, scikit-learn, learnergy)")
    parser.add_argument("--schedule", choices=["per-variant", "constant", "linear"],
                        default="per-variant",
                        help="learning-rate schedule of the fastrbm variants (default: VARIANTS)")
    parser.add_argument("--visible-bias-base", action="store_true",
                        help="also run AIS from the model's own visible biases")
    parser.add_argument("--models-dir", default=None,
                        help="save trained parameters here, reuse them when present")
    args = parser.parse_args()
    betas = None if args.betas == "default" else int(args.betas)
    X = binarised(ROOT + "train-images-idx3-ubyte.gz", args.n_train, seed=0)
    X_test = binarised(ROOT + "t10k-images-idx3-ubyte.gz", args.n_test, seed=1)
    variants = [v for v in VARIANTS
                if not (args.skip_sklearn and v[1] == "sklearn")
                and (v[1] != "learnergy" or args.only is not None)
                and (args.only is None or any(s == v[0] or s in v[0].replace("(", " ").split()
                                              for s in args.only))]
    load_start = os.getloadavg()
    start = time.perf_counter()
    rows = []
    if args.schedule != "per-variant":
        variants = [(name, library, params, args.schedule if library == "fastrbm" else schedule)
                    for name, library, params, schedule in variants]
    for name, library, params, schedule in variants:
        model, seconds = cached_train(library, params, schedule, X, args.epochs,
                                      args.models_dir, name)
        starts = [("data base rates", contextlib.nullcontext)]
        if args.visible_bias_base:
            starts.append(("own visible biases", visible_bias_base))
        for start_name, context in starts:
            with context():
                result, messages, ais_seconds = run_ais(model, X, args.chains, betas)
            for message in messages:
                print(f"{name} [{start_name}]: warning: {message}", file=sys.stderr, flush=True)
            ll = evaluation.log_likelihood(model, X_test, log_z=result).mean()
            rows.append((name, start_name, describe(library, params, schedule), seconds, ll,
                         result, messages, ais_seconds))
            print(f"{name} [{start_name}]: {ll:.2f} nats, log Z {result.log_z:.3f}, "
                  f"reverse {result.log_z_reverse:.3f}, certified {result.log_z_certified:.3f}, "
                  f"train {seconds if seconds is None else round(seconds, 1)} s, "
                  f"AIS {ais_seconds:.1f} s", file=sys.stderr, flush=True)
    print(f"Fashion-MNIST binarised, {len(X)} train / {len(X_test)} test rows, "
          f"{args.epochs} epochs, 500 hidden, batch 100, AIS {args.chains} chains x "
          f"{'14,501 (S&M)' if betas is None else betas} temperatures, forward + reverse")
    print("| model | hyperparameters | train time | AIS start | test log-likelihood (nats) "
          "| log Z: forward, reverse | sandwich [low, high] (width) | certified >= "
          "| 95% bracket | AIS time (forward + reverse) | warnings |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for name, start_name, hyper, seconds, ll, result, messages, ais_seconds in rows:
        low = max(result.log_z, result.log_z_certified)
        high = result.log_z_reverse
        train_cell = "loaded" if seconds is None else f"{seconds:.1f} s"
        print(f"| {name} | {hyper} | {train_cell} | {start_name} | {ll:.2f} | "
              f"{result.log_z:.2f}, {result.log_z_reverse:.2f} | "
              f"[{low:.2f}, {high:.2f}] ({high - low:+.2f}) | "
              f"{result.log_z_certified:.2f} | "
              f"[{result.log_z_low:.2f}, {result.log_z_high:.2f}] | {ais_seconds:.1f} s | "
              f"{'; '.join(messages) if messages else 'none'} |")
    load_end = os.getloadavg()
    print(f"\nwhole run {time.perf_counter() - start:.0f} s on {os.cpu_count()} logical CPUs; "
          f"load average (1, 5, 15 min) at start {tuple(round(x, 2) for x in load_start)}, "
          f"at end {tuple(round(x, 2) for x in load_end)}")
    ll = {name: value for name, start_name, _, _, value, _, _, _ in rows
          if start_name == "data base rates"}
    checks = [("CD-10 better than CD-1", "fastrbm CD-10", "fastrbm CD-1"),
              ("PCD-10 better than CD-1", "fastrbm PCD-10", "fastrbm CD-1")]
    checks += [(f"{n.split()[1]} better than scikit-learn", n, "scikit-learn (PCD-1)")
               for n in ("fastrbm CD-1", "fastrbm CD-10", "fastrbm PCD-10")]
    for text, a, b in checks:
        if a in ll and b in ll:
            print(f"- {text}: {'yes' if ll[a] > ll[b] else 'NO'} "
                  f"({ll[a]:.2f} vs {ll[b]:.2f}, difference {ll[a] - ll[b]:+.2f} nats)")


if __name__ == "__main__":
    main()
