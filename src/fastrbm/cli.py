"""The ``fastrbm`` command: train, sample, evaluate and inspect models.

``fastrbm train`` with no arguments trains a BernoulliRBM on scikit-learn's
8x8 digits and writes the model, its metrics and pictures into
``./fastrbm-out``.  Run ``fastrbm COMMAND --help`` for every option.
"""
import argparse
import importlib.util
import json
import os
import sys
import time

import numpy as np

from . import datasets
from ._version import __version__
from .io import load_model, model_class, read_metadata, save_model

# --model choice -> (class name in fastrbm.io.MODEL_CLASSES, needs labels,
# builder of constructor parameters); a new estimator type is one entry here
# and one in fastrbm.io.MODEL_CLASSES
RBM_OPTIONS = ("n_components", "learning_rate", "batch_size", "n_iter", "k", "method",
               "momentum", "weight_decay")


def _rbm_params(options, common):
    return {**options, **common}


def _dbn_params(options, common, sizes):
    # a DBN passes the RBM hyperparameters on to every layer; its layer sizes
    # replace --n-components
    if "n_components" in options:
        raise CLIError("--n-components is for --model rbm; use --hidden-layer-sizes")
    return {"hidden_layer_sizes": sizes, "rbm_params": options, **common}


MODEL_TYPES = {
    "rbm": ("BernoulliRBM", False, lambda o, c, s: _rbm_params(o, c)),
    "gaussian-rbm": ("GaussianBernoulliRBM", False, lambda o, c, s: _rbm_params(o, c)),
    "dbn": ("DBN", False, _dbn_params),
    "dbn-classifier": ("DBNClassifier", True, _dbn_params),
}

# defaults per data set: small and fast for the 8x8 digits (the no-argument
# run must finish in well under a minute on 2 cores), larger for 28x28 images;
# files get at least IMAGES_MIN_UPDATES minibatch updates (5 epochs of a
# 1797-row file are 180 updates, which learn nothing), more epochs if needed,
# unless --n-iter is given (then exactly that many epochs)
IMAGES_MIN_UPDATES = 2000
DEFAULTS = {
    "digits": dict(n_components=100, learning_rate=0.05, batch_size=10, n_iter=30, k=1,
                   method="pcd", momentum=0.5, weight_decay=1e-4),
    "images": dict(n_components=200, learning_rate=0.05, batch_size=50, n_iter=5, k=1,
                   method="pcd", momentum=0.5, weight_decay=1e-4,
                   min_updates=IMAGES_MIN_UPDATES),
}


# learning rate of --model gaussian-rbm unless given (GaussianBernoulliRBM's default)
GAUSSIAN_LEARNING_RATE = 0.01


def _given_options(args):
    """The RBM options given on the command line."""
    return {k for k in RBM_OPTIONS if getattr(args, k) is not None}


class CLIError(Exception):
    """An error to report as one line, without a traceback."""


# ----------------------------------------------------------------- data
def _load_path(path):
    """(X, y or None, description) from a .npy, .npz, .csv or IDX file."""
    if not os.path.exists(path):
        raise CLIError(f"data file not found: {path}")
    if os.path.isdir(path):
        raise CLIError(f"{path} is a directory; --data wants a .npy, .npz, .csv or IDX file "
                       f"or one of digits, fashion-mnist, mnist")
    lower = path.lower()
    y = None
    try:
        if lower.endswith(".npy"):
            X = np.load(path, allow_pickle=False)
        elif lower.endswith(".npz"):
            with np.load(path, allow_pickle=False) as archive:
                keys = archive.files
                xkey = next((k for k in ("X", "data", "x", "images") if k in keys), None)
                if xkey is None:
                    if len(keys) != 1:
                        raise CLIError(f"{path}: cannot tell which array is the data; name it "
                                       f"'X' or 'data' (found {', '.join(keys) or 'nothing'})")
                    xkey = keys[0]
                X = archive[xkey]
                ykey = next((k for k in ("y", "labels", "target") if k in keys), None)
                y = archive[ykey] if ykey else None
        elif lower.endswith(".csv"):
            X = _load_csv(path)
        elif _is_idx(path):
            X = datasets.read_idx(path)
        else:
            raise CLIError(f"{path}: unknown data format; use .npy, .npz, .csv or an IDX file "
                           f"(e.g. train-images-idx3-ubyte[.gz])")
    except CLIError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise CLIError(f"{path}: cannot read data ({exc})") from None
    X = np.asarray(X)
    if X.ndim == 3:  # a stack of images, as in IDX image files
        X = X.reshape(len(X), -1)
    if X.ndim != 2 or X.size == 0:
        raise CLIError(f"{path}: expected a non-empty 2-D array (rows = samples), "
                       f"got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise CLIError(f"{path}: expected numbers, got dtype {X.dtype}")
    if X.dtype.kind in "iu" and X.dtype != np.uint8:
        if X.min() >= 0 and X.max() <= 255:
            X = X.astype(np.uint8)
    elif X.dtype.kind == "f" and np.isfinite(X).all() and X.max() > 1 and X.min() >= 0 \
            and X.max() <= 255 and np.array_equal(X, np.round(X)):
        # whole numbers 0-255 (CSV exports of images): read as uint8 intensities
        print(f"note: {path} holds whole numbers up to {X.max():g}; "
              f"reading them as 0-255 intensities", file=sys.stderr)
        X = X.astype(np.uint8)
    return X, y, path


def _is_idx(path):
    try:
        with datasets._open_maybe_gzip(path) as fh:
            head = fh.read(4)
    except OSError:
        return False
    return len(head) == 4 and head[:2] == b"\x00\x00" and head[2] in datasets._IDX_TYPES


def _load_csv(path):
    with open(path) as fh:
        first = fh.readline()
    fields = [f.strip() for f in first.split(",")]

    def number(text):
        try:
            float(text)
            return True
        except ValueError:
            return False

    # one header line (no number in it) is skipped; any other text is an error
    header = bool(fields) and not any(number(f) for f in fields)
    return np.loadtxt(path, delimiter=",", ndmin=2, skiprows=int(header))


def load_data(spec, subset="train"):
    """The data named by ``--data``: (X, y or None, description, image shape)."""
    if spec == "digits":
        X, y = datasets.load_digits()
        # a fixed split so that train reports held-out metrics
        rng = np.random.default_rng(0)
        order = rng.permutation(len(X))
        cut = int(0.8 * len(X))
        rows = order[:cut] if subset == "train" else order[cut:]
        return X[rows], y[rows], f"scikit-learn digits ({subset} split)", (8, 8)
    if spec in ("fashion-mnist", "mnist"):
        loader = datasets.load_fashion_mnist if spec == "fashion-mnist" else datasets.load_mnist
        try:
            X, y = loader(subset)
        except (OSError, ValueError) as exc:
            raise CLIError(f"cannot load {spec}: {exc}") from None
        return X, y, f"{spec} ({subset})", (28, 28)
    X, y, desc = _load_path(spec)
    return X, y, desc, None


# ----------------------------------------------------------------- helpers
def _model_class(model_type):
    name, needs_labels, _ = MODEL_TYPES[model_type]
    try:
        return model_class(name), needs_labels
    except ValueError:
        raise CLIError(f"--model {model_type} ({name}) is not available in this version of "
                       f"fastrbm ({__version__}); available: "
                       f"{', '.join(t for t in MODEL_TYPES if _available(t))}") from None


def _available(model_type):
    try:
        model_class(MODEL_TYPES[model_type][0])
        return True
    except ValueError:
        return False


def _metrics(model, X, y=None):
    """Reconstruction error, pseudo-likelihood, free energy (and accuracy)."""
    out = {"n_samples": int(X.shape[0])}
    # a Gaussian RBM reads raw numbers (uint8 too) and reconstructs on that scale
    gaussian = type(model).__name__ == "GaussianBernoulliRBM"
    data = X / 255.0 if X.dtype == np.uint8 and not gaussian else X
    if hasattr(model, "reconstruct"):
        out["reconstruction_error"] = float(np.mean((data - model.reconstruct(X)) ** 2))
    if hasattr(model, "score_samples"):
        # GaussianBernoulliRBM.score_samples is log p(x) + log Z, not a pseudo-likelihood
        key = "unnormalised_log_density" if gaussian else "pseudo_likelihood"
        out[key] = float(np.mean(model.score_samples(X)))
    if hasattr(model, "free_energy"):
        out["mean_free_energy"] = float(np.mean(model.free_energy(X)))
    if y is not None and hasattr(model, "predict"):
        out["accuracy"] = float(np.mean(model.predict(X) == y))
    bottom = _bottom_rbm(model)
    if bottom is not None and bottom is not model:
        # a DBN has no reconstruction of its own; its first RBM's is still informative
        out.update({f"layer1_{k}": v for k, v in _metrics(bottom, X).items()
                    if k != "n_samples"})
    return out


def _ais(model, X, n_chains, seed):
    """AIS estimate of log Z and the mean log-likelihood of X (fastrbm.evaluation)."""
    try:
        from . import evaluation
    except ImportError:
        raise CLIError("AIS needs fastrbm.evaluation, which is not in this version") from None
    result = evaluation.log_partition_ais(model, n_chains=n_chains, random_state=seed)
    log_p = evaluation.log_likelihood(model, X, log_z=result)
    return {"ais_log_likelihood": float(np.mean(log_p)),
            "ais_log_partition": float(result.log_z),
            # +-3 standard errors of the mean importance weight, mapped to log Z
            "ais_log_partition_low": float(result.log_z_low),
            "ais_log_partition_high": float(result.log_z_high),
            "ais_chains": n_chains}


def _print_metrics(title, metrics):
    print(title)
    for key, value in metrics.items():
        print(f"  {key:28s} {value:.6g}" if isinstance(value, float) else f"  {key:28s} {value}")


def _plotting(enabled):
    """The plotting module, or None (with a note) when matplotlib is missing."""
    if not enabled:
        return None
    if importlib.util.find_spec("matplotlib") is None:
        print("note: pictures skipped: matplotlib is not installed "
              "(pip install 'fastrbm[plot]')", file=sys.stderr)
        return None
    from . import plotting

    return plotting


def _write_json(path, obj):
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=2)
        fh.write("\n")


def _prepare_out(out):
    if os.path.exists(out) and not os.path.isdir(out):
        raise CLIError(f"--out {out} exists and is not a directory")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create output folder {out}: {exc.strerror}") from None


# ----------------------------------------------------------------- commands
def cmd_train(args):
    cls, needs_labels = _model_class(args.model)
    if args.device == "gpu" and importlib.util.find_spec("cupy") is None:
        raise CLIError("--device gpu needs CuPy (pip install 'fastrbm[gpu]') and an NVIDIA "
                       "GPU; use --device cpu")
    _prepare_out(args.out)
    print(f"loading data: {args.data}", flush=True)
    X, y, desc, shape = load_data(args.data, "train")
    if needs_labels and y is None:
        raise CLIError(f"--model {args.model} needs labels; {desc} has none "
                       f"(use a .npz file with arrays X and y)")
    test = None
    if args.data in ("digits", "fashion-mnist", "mnist"):
        X_test, y_test, test_desc, _ = load_data(args.data, "test")
        test = (X_test, y_test, test_desc)

    explicit = {k: getattr(args, k) for k in RBM_OPTIONS if getattr(args, k) is not None}
    if "n_iter" in explicit:
        # epochs given on the command line are run as given
        explicit["min_updates"] = 0
    if args.model == "rbm" or args.model == "gaussian-rbm":
        # the RBM gets the data set's defaults; a DBN keeps its own per-layer defaults
        explicit = {**DEFAULTS["digits" if args.data == "digits" else "images"], **explicit}
        if args.model == "gaussian-rbm" and "learning_rate" not in _given_options(args):
            # unbounded visible units: 0.05 diverges on digits (0.01 does not)
            explicit["learning_rate"] = GAUSSIAN_LEARNING_RATE
    common = {"random_state": args.seed, "verbose": 0 if args.quiet else 1,
              "n_jobs": args.n_jobs}
    params = MODEL_TYPES[args.model][2](explicit, common, args.hidden_layer_sizes)
    accepted = set(cls().get_params(deep=False))
    for name in params:
        if name not in accepted:
            raise CLIError(f"option for {name} does not apply to {cls.__name__}")
    model = cls(**params)
    print(f"training {cls.__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})\n"
          f"  on {desc}: {X.shape[0]} rows x {X.shape[1]} features", flush=True)
    if args.device == "gpu":
        import cupy  # installed (checked above); CuPy input selects the GPU engine

        X = cupy.asarray(X)
    start = time.perf_counter()
    try:
        model.fit(X, y) if needs_labels else model.fit(X)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"cannot train on {desc}: {exc}") from None
    seconds = time.perf_counter() - start
    if args.device == "gpu" and hasattr(model, "to_numpy"):
        model.to_numpy()
        X = X.get()

    metrics = {"model": cls.__name__, "data": desc, "params": {k: v for k, v in params.items()},
               "fit_seconds": seconds, "fastrbm_version": __version__,
               "train": _metrics(model, X, y)}
    if test is not None:
        metrics["test_data"] = test[2]
        metrics["test"] = _metrics(model, test[0], test[1])
    if args.ais:
        target = test[0] if test is not None else X
        metrics["test" if test is not None else "train"].update(
            _ais(model, target, args.ais_chains, args.seed))
    model_path = save_model(model, os.path.join(args.out, "model.npz"))
    _write_json(os.path.join(args.out, "metrics.json"), metrics)
    print(f"trained in {seconds:.2f} s")
    _print_metrics("training data:", metrics["train"])
    if test is not None:
        _print_metrics(f"held-out data ({test[2]}):", metrics["test"])
    written = [model_path, os.path.join(args.out, "metrics.json")]
    plotting = _plotting(not args.no_plots)
    if plotting is not None:
        shown = test[0] if test is not None else X
        written += _pictures(plotting, model, shown, shape, args.out, args.n_steps)
    print("wrote:\n  " + "\n  ".join(written))
    return 0


def _bottom_rbm(model):
    """The model itself, or the first RBM of a DBN / pretrained DBN classifier."""
    if hasattr(model, "components_"):
        return model
    if getattr(model, "rbms_", None):
        return model.rbms_[0]
    dbn = getattr(model, "dbn_", None)
    return dbn.rbms_[0] if dbn is not None and getattr(dbn, "rbms_", None) else None


def _pictures(plotting, model, X, shape, out, n_steps):
    model = _bottom_rbm(model)
    files = []
    if model is None:
        return files
    def path(name):
        files.append(os.path.join(out, name))
        return files[-1]
    if hasattr(model, "components_"):
        plotting.plot_filters(model, image_shape=shape, path=path("filters.png"))
    if hasattr(model, "reconstruct"):
        plotting.plot_reconstructions(model, X, image_shape=shape, path=path("reconstructions.png"))
    if hasattr(model, "sample"):
        samples = model.sample(100, n_steps=n_steps)
        plotting.plot_samples(samples, shape, title=f"100 Gibbs chains after {n_steps} steps",
                              path=path("samples.png"))
    if getattr(model, "history_", None):
        plotting.plot_history(model, path=path("training_curves.png"))
    return files


def _load(path):
    try:
        return load_model(path)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None


def cmd_sample(args):
    model = _load(args.model_file)
    if not hasattr(model, "sample"):
        raise CLIError(f"{type(model).__name__} cannot draw samples")
    if args.n_samples < 1 or args.n_steps < 1:
        raise CLIError("--n-samples and --n-steps must be positive")
    _prepare_out(args.out)
    samples = model.sample(args.n_samples, n_steps=args.n_steps)
    npy = os.path.join(args.out, "samples.npy")
    np.save(npy, samples)
    written = [npy]
    plotting = _plotting(not args.no_plots)
    if plotting is not None:
        png = os.path.join(args.out, "samples.png")
        plotting.plot_samples(samples, title=f"{args.n_samples} Gibbs chains after "
                                             f"{args.n_steps} steps", path=png)
        written.append(png)
    print(f"drew {args.n_samples} samples ({args.n_steps} Gibbs steps each); wrote:\n  "
          + "\n  ".join(written))
    return 0


def cmd_evaluate(args):
    model = _load(args.model_file)
    subset = args.subset
    X, y, desc, _ = load_data(args.data, subset)
    n_in = getattr(model, "n_features_in_", None)
    if n_in is not None and X.shape[1] != n_in:
        raise CLIError(f"{desc} has {X.shape[1]} features but the model was trained on {n_in}")
    try:
        metrics = _metrics(model, X, y)
        if args.ais:
            metrics.update(_ais(model, X, args.ais_chains, args.seed))
    except (ValueError, TypeError) as exc:
        raise CLIError(f"cannot evaluate on {desc}: {exc}") from None
    metrics = {"model": type(model).__name__, "data": desc, **metrics}
    _print_metrics(f"{type(model).__name__} on {desc}:", {k: v for k, v in metrics.items()
                                                          if k not in ("model", "data")})
    if args.json:
        _write_json(args.json, metrics)
        print(f"wrote {args.json}")
    return 0


def cmd_info(args):
    try:
        meta = read_metadata(args.model_file)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    model = _load(args.model_file)
    print(f"{args.model_file}: fastrbm model file, format version {meta['format_version']}, "
          f"written by fastrbm {meta['fastrbm_version']}")
    print(f"class: {meta['class']}")
    print("parameters:")
    for key, value in model.get_params(deep=False).items():
        print(f"  {key} = {value!r}")
    print("fitted attributes:" if meta["fitted"] else "not fitted")
    for name in meta["fitted"]:
        value = getattr(model, name)
        if isinstance(value, np.ndarray):
            print(f"  {name}: array {value.shape} {value.dtype}")
        elif isinstance(value, list):
            print(f"  {name}: {len(value)} entries")
        else:
            print(f"  {name} = {value!r}")
    history = getattr(model, "history_", None)
    if history:
        last = history[-1]
        print("last epoch: " + ", ".join(f"{k} = {v:.6g}" if isinstance(v, float) else f"{k} = {v}"
                                         for k, v in last.items()))
    return 0


# ----------------------------------------------------------------- parser
def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _sizes(text):
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, "
                                         f"got {text!r}")
    return sizes


def _nonneg_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def build_parser():
    """The argument parser of the ``fastrbm`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="fastrbm",
        description="Train, sample, evaluate and inspect Restricted Boltzmann Machines. "
                    "'fastrbm train' with no arguments trains on scikit-learn's digits.")
    parser.add_argument("--version", action="version", version=f"fastrbm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    data_help = ("data set: digits (scikit-learn's 8x8 digits, built in), fashion-mnist, "
                 "mnist (looked up in $FASTRBM_DATA, the user cache and /usr/share/datasets, "
                 "else downloaded), or a file: .npy (2-D array), .npz (arrays X [and y]), "
                 ".csv (numbers, one row per sample, optional header line) or IDX "
                 "(e.g. train-images-idx3-ubyte.gz). Values must be in [0, 1] or uint8 0-255")

    train = sub.add_parser("train", help="train a model and write it with metrics and pictures",
                           description="Train a model; write model.npz, metrics.json and PNG "
                                       "pictures into --out. For --model rbm, hyperparameters "
                                       "left out take the defaults below, suited to the data "
                                       "set; a dbn keeps its own per-layer defaults. The "
                                       "values used are printed.")
    train.add_argument("--data", default="digits", metavar="DATA",
                       help=data_help + " (default: digits)")
    train.add_argument("--model", default="rbm", choices=list(MODEL_TYPES),
                       help="model type: rbm (BernoulliRBM), gaussian-rbm, dbn, dbn-classifier "
                            "(needs labels); types missing from this version say so "
                            "(default: rbm)")
    train.add_argument("--n-components", type=_positive_int,
                       help="hidden units of an rbm (default: 100 for digits, 200 for 28x28 "
                            "images)")
    train.add_argument("--hidden-layer-sizes", type=_sizes, default=(100, 50), metavar="N,N,...",
                       help="hidden units of each layer of a dbn or dbn-classifier, bottom "
                            "first (default: 100,50); the RBM options below apply to every "
                            "layer's pretraining")
    train.add_argument("--learning-rate", type=_nonneg_float, help="step size (default: 0.05)")
    train.add_argument("--batch-size", type=_positive_int,
                       help="rows per minibatch (default: 10 for digits, 50 otherwise)")
    train.add_argument("--n-iter", type=int,
                       help="epochs, run exactly (default: 30 for digits; otherwise 5, raised "
                            "to at least 2000 minibatch updates on small files)")
    train.add_argument("--k", type=_positive_int, help="Gibbs steps per update (default: 1)")
    train.add_argument("--method", choices=["pcd", "cd"],
                       help="pcd: persistent contrastive divergence; cd: CD-k (default: pcd)")
    train.add_argument("--momentum", type=_nonneg_float, help="momentum in [0, 1) (default: 0.5)")
    train.add_argument("--weight-decay", type=_nonneg_float,
                       help="L2 penalty on the weights (default: 1e-4)")
    train.add_argument("--seed", type=int, default=0,
                       help="random seed: same seed, same model, for any thread count "
                            "(default: 0)")
    train.add_argument("--n-jobs", type=int,
                       help="CPU threads (default: what OpenMP allows; -1 all cores)")
    train.add_argument("--device", choices=["cpu", "gpu"], default="cpu",
                       help="cpu, or gpu (NVIDIA, needs CuPy) (default: cpu)")
    train.add_argument("--out", default="fastrbm-out", metavar="DIR",
                       help="output folder, created if missing (default: ./fastrbm-out)")
    train.add_argument("--n-steps", type=_positive_int, default=1000,
                       help="Gibbs steps of the chains in samples.png (default: 1000)")
    train.add_argument("--ais", action="store_true",
                       help="also estimate the log-likelihood by annealed importance sampling")
    train.add_argument("--ais-chains", type=_positive_int, default=100,
                       help="AIS chains (default: 100)")
    train.add_argument("--no-plots", action="store_true", help="write no pictures")
    train.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    train.set_defaults(func=cmd_train)

    sample = sub.add_parser("sample", help="draw samples from a saved model",
                            description="Run Gibbs chains of a saved model from random starts; "
                                        "write samples.npy and samples.png into --out.")
    sample.add_argument("model_file", metavar="MODEL", help="model file (.npz) from 'train'")
    sample.add_argument("--n-samples", type=int, default=100, help="chains (default: 100)")
    sample.add_argument("--n-steps", type=int, default=1000,
                        help="Gibbs steps per chain (default: 1000)")
    sample.add_argument("--out", default="fastrbm-out", metavar="DIR",
                        help="output folder (default: ./fastrbm-out)")
    sample.add_argument("--no-plots", action="store_true", help="write samples.npy only")
    sample.set_defaults(func=cmd_sample)

    evaluate = sub.add_parser("evaluate", help="metrics of a saved model on data",
                              description="Reconstruction error, pseudo-likelihood, mean free "
                                          "energy, accuracy (classifiers with labels) and, with "
                                          "--ais, the AIS log-likelihood.")
    evaluate.add_argument("model_file", metavar="MODEL", help="model file (.npz) from 'train'")
    evaluate.add_argument("--data", required=True, metavar="DATA", help=data_help)
    evaluate.add_argument("--subset", choices=["train", "test"], default="test",
                          help="split of a named data set (default: test)")
    evaluate.add_argument("--ais", action="store_true",
                          help="estimate the log-likelihood by annealed importance sampling")
    evaluate.add_argument("--ais-chains", type=_positive_int, default=100,
                          help="AIS chains (default: 100)")
    evaluate.add_argument("--seed", type=int, default=0, help="AIS random seed (default: 0)")
    evaluate.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    evaluate.set_defaults(func=cmd_evaluate)

    info = sub.add_parser("info", help="describe a saved model",
                          description="Print a model file's format, class, parameters and "
                                      "fitted attributes.")
    info.add_argument("model_file", metavar="MODEL", help="model file (.npz)")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv=None):
    """Run the ``fastrbm`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 1 on an error (reported as one line on stderr), 2 on a
        command-line usage error.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"fastrbm: error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:  # e.g. matplotlib or CuPy missing
        print(f"fastrbm: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fastrbm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
