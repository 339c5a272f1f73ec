"""The ``fastrbm`` command: train, sample, evaluate and inspect models.

``fastrbm train`` with no arguments trains a BernoulliRBM on scikit-learn's
8x8 digits and writes the model, its metrics and pictures into
``./fastrbm-out``.  Run ``fastrbm COMMAND --help`` for every option.

Errors are one line on stderr, ``fastrbm: error: ...``, never a traceback:
exit status 2 for a command line that cannot work (bad or too large option
values, options that do not apply to the chosen model), 1 for a problem with
a data or model file or with training.  Python warnings raised while a
command runs (from the estimators or the evaluation) are printed as one line
each, ``fastrbm: warning: ...``.

Data files follow the Python API's input rules (floats in [0, 1], uint8 as
intensity/255, bool and 0/1 integers as they are), with one convenience
stated in a printed note: whole numbers that reach above 1 and stay within
0-255 (integer arrays, CSV exports of images) are read as 0-255 intensities.
For ``--model categorical-rbm`` the data are sequences: an aligned FASTA or
A2M file (``fastrbm.sequences.read_alignment``, ``--alphabet``), or a NumPy
or CSV file of integer codes, read as they are.
"""
import argparse
import importlib.util
import json
import os
import sys
import time
import warnings

import zipfile
import zlib

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from . import datasets
from ._engine import bind
from ._version import __version__
from .io import load_model, model_class, read_metadata, save_model

# --model choice -> (class name in fastrbm.io.MODEL_CLASSES, needs labels,
# builder of constructor parameters); a new estimator type is one entry here
# and one in fastrbm.io.MODEL_CLASSES
RBM_OPTIONS = ("n_components", "learning_rate", "batch_size", "n_iter", "k", "method",
               "momentum", "weight_decay", "n_temperatures", "betas", "n_chains", "centered",
               "sigma")


def _rbm_params(options, common):
    return {**options, **common}


def _dbn_params(options, common, sizes):
    # a DBN passes the RBM hyperparameters on to every layer; its layer sizes
    # replace --n-components
    if "n_components" in options:
        raise UsageError("--n-components is for --model rbm; use --hidden-layer-sizes")
    return {"hidden_layer_sizes": sizes or DBN_LAYER_SIZES, "rbm_params": options, **common}


MODEL_TYPES = {
    "rbm": ("BernoulliRBM", False, lambda o, c, s: _rbm_params(o, c)),
    "gaussian-rbm": ("GaussianBernoulliRBM", False, lambda o, c, s: _rbm_params(o, c)),
    "dbn": ("DBN", False, _dbn_params),
    "dbn-classifier": ("DBNClassifier", True, _dbn_params),
    "categorical-rbm": ("CategoricalRBM", False, lambda o, c, s: _rbm_params(o, c)),
}

# models of sequences (integer codes, read as they are)
SEQUENCE_MODELS = ("categorical-rbm",)
# file endings of aligned sequences (optionally .gz)
ALIGNMENT_SUFFIXES = (".fasta", ".fa", ".faa", ".fas", ".afa", ".a2m", ".aln")

# defaults per data set: small and fast for the 8x8 digits (the no-argument
# run is a first look, so it must be quick; its time is in
# benchmarks/README.md, "The no-argument CLI run"), larger for 28x28 images;
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
    # PCD-10 with 100 hidden units and minibatches of 100, the setting of
    # DsysDML's rbms and of benchmarks/bench_kunitz.py
    "sequences": dict(n_components=100, learning_rate=0.01, batch_size=100, n_iter=20, k=10,
                      method="pcd", momentum=0.0, weight_decay=0.0,
                      min_updates=IMAGES_MIN_UPDATES),
}
# chains of the site-statistics picture of a sequence model
SEQUENCE_SAMPLES = 1000


# --hidden-layer-sizes of a dbn or dbn-classifier unless given
DBN_LAYER_SIZES = (100, 50)

# learning rate of --model gaussian-rbm unless given (GaussianBernoulliRBM's default)
GAUSSIAN_LEARNING_RATE = 0.01


def _given_options(args):
    """The RBM options given on the command line."""
    return {k for k in RBM_OPTIONS if getattr(args, k) is not None}


class CLIError(Exception):
    """An error to report as one line, without a traceback (exit status 1)."""

    status = 1


class UsageError(CLIError):
    """A command line that cannot work: reported like CLIError, exit status 2."""

    status = 2


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line (``fastrbm: error: ...``) and status 2."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


# what a command may be asked for: far beyond real use, small enough that the
# arrays fit in memory and the Gibbs step counter cannot wrap (issue 21, D10/D12)
MAX_SAMPLES = 1_000_000
MAX_SAMPLE_VALUES = 2**27  # samples x features: 1 GiB of float64
MAX_STEPS = 1_000_000
MAX_AIS_CHAINS = 100_000
# replicas of parallel tempering and checkpoints of a fit (the estimators' own limits)
MAX_TEMPERATURES = 10_000
MAX_CHECKPOINTS = 10_000
# pictures show at most this many samples
MAX_SHOWN = 400


# ----------------------------------------------------------------- data
def _is_alignment(path):
    lower = path.lower()
    lower = lower[:-3] if lower.endswith(".gz") else lower
    return lower.endswith(ALIGNMENT_SUFFIXES)


def _load_alignment(path, alphabet):
    """(codes, None, description) of an aligned FASTA / A2M file."""
    from .sequences import read_alignment

    if not os.path.exists(path):
        raise CLIError(f"data file not found: {path}")
    try:
        alignment = read_alignment(path, alphabet=alphabet)
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise CLIError(f"{path}: cannot read the alignment ({_first_line(exc)})") from None
    if alignment.codes.size == 0:
        raise CLIError(f"{path}: the alignment holds no sequences")
    return alignment.codes, None, f"{path} ({len(alignment.alphabet)} symbols)"


def _load_path(path, codes=False):
    """(X, y or None, description) from a .npy, .npz, .csv or IDX file
    (``codes``: integer codes, never read as intensities)."""
    if not os.path.exists(path):
        raise CLIError(f"data file not found: {path}")
    if os.path.isdir(path):
        raise CLIError(f"{path} is a directory; --data wants a .npy, .npz, .csv or IDX file "
                       f"or one of digits, fashion-mnist, mnist")
    lower = path.lower()
    y = None
    try:
        if os.path.getsize(path) == 0:
            raise CLIError(f"{path}: the file is empty")
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
    except (ValueError, OSError, EOFError, MemoryError, NotImplementedError,
            zipfile.BadZipFile, zlib.error) as exc:
        if "allow_pickle" in str(exc) or "pickled" in str(exc):
            # numpy's advice (allow_pickle=True) would run code from the file
            raise CLIError(f"{path}: cannot read data: not a NumPy file of numbers (it is "
                           f"corrupt or holds pickled Python objects, which fastrbm never "
                           f"loads); save the data with numpy.save as a number array") from None
        raise CLIError(f"{path}: cannot read data ({_first_line(exc)})") from None
    X = np.asarray(X)
    if X.size == 0 or X.ndim not in (2, 3):
        raise CLIError(f"{path}: expected a non-empty 2-D array (rows = samples) or a stack "
                       f"of images, got shape {X.shape}")
    if X.ndim == 3:  # a stack of images, as in IDX image files
        X = X.reshape(len(X), -1)
    if X.dtype.kind not in "biuf":
        raise CLIError(f"{path}: expected numbers, got dtype {X.dtype}")
    if X.dtype.kind == "f":
        bad = np.argwhere(~np.isfinite(X))
        if len(bad):
            row, col = bad[0]
            raise CLIError(f"{path}: row {row}, column {col} (counting from 0) is "
                           f"{X[row, col]}; remove or fill in such values")
    return (X if codes else _intensities(X, path)), y, path


def _intensities(X, path):
    """The one convenience beyond the Python API's input rules: whole numbers
    above 1 and within 0-255 are 0-255 intensities (a printed note says so).
    0/1 data is never touched, so it means 0/1 in every file format."""
    if X.dtype == np.uint8 or X.dtype.kind == "b":
        return X
    if X.dtype.kind == "f" and not np.array_equal(X, np.round(X)):
        return X
    low, high = X.min(), X.max()
    if low >= 0 and 1 < high <= 255:
        print(f"note: {path} holds whole numbers from {low:g} to {high:g}; reading them as "
              f"0-255 intensities (value / 255)", file=sys.stderr)
        return X.astype(np.uint8)
    return X


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
        if not first.strip() and not fh.read(1 << 16).strip():
            raise CLIError(f"{path}: the CSV file holds no data")
    fields = [f.strip() for f in first.split(",")]

    def number(text):
        try:
            float(text)
            return True
        except ValueError:
            return False

    # one header line (no number in it) is skipped; any other text is an error
    header = bool(fields) and not any(number(f) for f in fields)
    with warnings.catch_warnings():
        # a header-only file: reported below as empty, not as a numpy warning
        warnings.simplefilter("ignore", UserWarning)
        X = np.loadtxt(path, delimiter=",", ndmin=2, skiprows=int(header))
    if X.size == 0:
        raise CLIError(f"{path}: the CSV file holds no data rows")
    return X


def load_data(spec, subset="train", sequences=None):
    """The data named by ``--data``: (X, y or None, description, image shape).

    ``sequences``: the alphabet of a sequence model's data (aligned FASTA /
    A2M files are read with it, other files as integer codes); None for
    models of images."""
    if sequences is not None and spec not in ("digits", "fashion-mnist", "mnist"):
        if _is_alignment(spec):
            X, y, desc = _load_alignment(spec, sequences)
        else:
            X, y, desc = _load_path(spec, codes=True)
        return X, y, desc, None
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
    # an RBM with real-valued visible units (Gaussian) reads raw numbers
    # (uint8 too) and reconstructs on that scale; categorical units
    # reconstruct the one-hot rows of their codes
    visible = bind(model).visible if _is_rbm(model) else None
    binary = visible is None or visible.binary
    data = X / 255.0 if X.dtype == np.uint8 and binary else X
    if visible is not None and hasattr(visible, "one_hot"):
        data = visible.one_hot(X)
    if hasattr(model, "reconstruct"):
        out["reconstruction_error"] = float(np.mean((data - model.reconstruct(X)) ** 2))
    if hasattr(model, "score_samples"):
        # GaussianBernoulliRBM.score_samples is log p(x) + log Z, not a pseudo-likelihood
        key = ("pseudo_likelihood" if visible is None or visible.has_pseudo_likelihood
               else "unnormalised_log_density")
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
    """AIS estimate of log Z and the mean log-likelihood of X (fastrbm.evaluation),
    with the forward-reverse sandwich and the 95% bracket; AISWarnings are
    printed as one line each on stderr."""
    import warnings

    try:
        from . import evaluation
    except ImportError:
        raise CLIError("AIS needs fastrbm.evaluation, which is not in this version") from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", evaluation.AISWarning)
        result = evaluation.log_partition_ais(model, n_chains=n_chains, random_state=seed,
                                              data=X)
    for item in caught:
        if issubclass(item.category, evaluation.AISWarning):
            print(f"warning: {item.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    # mean -F(x): every log-likelihood below is it minus one value of log Z
    neg_f = float(np.mean(evaluation.log_likelihood(model, X, log_z=0.0)))
    sandwich_low_z = max(result.log_z, result.log_z_certified)
    return {"ais_log_likelihood": neg_f - float(result.log_z),
            # stochastic bounds: reverse AIS (upper on log Z) and forward AIS
            "ais_ll_sandwich_low": neg_f - float(result.log_z_reverse),
            "ais_ll_sandwich_high": neg_f - float(sandwich_low_z),
            # holds with probability >= 95% (exact reverse start; see AISResult)
            "ais_log_likelihood_low": neg_f - float(result.log_z_high),
            "ais_log_likelihood_high": neg_f - float(result.log_z_low),
            "ais_log_partition": float(result.log_z),
            "ais_log_partition_low": float(result.log_z_low),
            "ais_log_partition_high": float(result.log_z_high),
            "ais_log_partition_reverse": float(result.log_z_reverse),
            "ais_log_partition_certified": float(result.log_z_certified),
            "ais_reverse_start": "exact" if result.reverse_exact else "approximate",
            "ais_effective_sample_size": float(result.ess),
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
def _refuse_inapplicable(args):
    """Options given that the chosen model or command would silently ignore."""
    rbm = args.model in ("rbm", "gaussian-rbm") + SEQUENCE_MODELS
    if args.model not in SEQUENCE_MODELS:
        for option in ("sequence_weights", "alphabet", "identity"):
            if getattr(args, option) is not None and getattr(args, option) is not False:
                raise UsageError(f"--{option.replace('_', '-')} is for sequence data "
                                 f"(--model categorical-rbm)")
    if args.identity is not None and not args.sequence_weights:
        raise UsageError("--identity applies only with --sequence-weights")
    if args.hidden_layer_sizes is not None and rbm:
        raise UsageError(f"--hidden-layer-sizes is for --model dbn or dbn-classifier; "
                         f"--model {args.model} takes --n-components")
    if args.ais and not rbm:
        raise UsageError(f"--ais estimates an RBM's log-likelihood; --model {args.model} "
                         f"has none (use --model rbm, gaussian-rbm or categorical-rbm)")
    if args.ais_chains is not None and not args.ais:
        raise UsageError("--ais-chains applies only with --ais")
    if args.n_steps is not None and args.no_plots:
        raise UsageError("--n-steps sets the Gibbs steps of samples.png, which --no-plots "
                         "leaves out")
    if args.n_temperatures is not None and args.method != "pt":
        raise UsageError("--n-temperatures sets the replicas of --method pt; add --method pt "
                         "or leave it out")
    if args.betas is not None:
        if args.method != "pt":
            raise UsageError("--betas sets the inverse temperatures of --method pt; add "
                             "--method pt or leave it out")
        if args.n_temperatures is not None:
            raise UsageError("give --betas or --n-temperatures, not both (--betas sets the "
                             "replicas and their inverse temperatures)")
        if isinstance(args.betas, str):
            raise UsageError("--betas auto is for 'fastrbm sample'; training takes the "
                             "inverse temperatures as numbers, e.g. --betas 0,0.5,0.8,1")
    if args.sigma is not None and args.model != "gaussian-rbm":
        raise UsageError(f"--sigma sets the standard deviations of Gaussian visible units "
                         f"(--model gaussian-rbm); --model {args.model} has none")
    if args.n_chains is not None and args.method == "cd":
        raise UsageError("--n-chains sets the persistent chains of --method pcd or pt; CD-k "
                         "starts its chains at the minibatch's rows")
    if args.checkpoints is not None and not rbm:
        # DBN.fit takes no checkpoints: its layers are fitted inside it
        raise UsageError(f"--checkpoints keeps an RBM's parameters during training; --model "
                         f"{args.model} has no such option (use --model rbm, gaussian-rbm or "
                         f"categorical-rbm)")


def cmd_train(args):
    _refuse_inapplicable(args)
    cls, needs_labels = _model_class(args.model)
    if args.device == "gpu" and importlib.util.find_spec("cupy") is None:
        raise CLIError("--device gpu needs CuPy (pip install 'fastrbm[gpu]') and an NVIDIA "
                       "GPU; use --device cpu")
    _prepare_out(args.out)
    print(f"loading data: {args.data}", flush=True)
    sequences = args.model in SEQUENCE_MODELS
    alphabet = (args.alphabet or "protein") if sequences else None
    X, y, desc, shape = load_data(args.data, "train", sequences=alphabet)
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
    if args.model in ("rbm", "gaussian-rbm") + SEQUENCE_MODELS:
        # the RBM gets the data set's defaults; a DBN keeps its own per-layer defaults
        kind = ("sequences" if sequences else "digits" if args.data == "digits"
                else "images")
        explicit = {**DEFAULTS[kind], **explicit}
        if args.model == "gaussian-rbm" and "learning_rate" not in _given_options(args):
            # unbounded visible units: 0.05 diverges on digits (0.01 does not)
            explicit["learning_rate"] = GAUSSIAN_LEARNING_RATE
    common = {"random_state": args.seed, "verbose": 0 if args.quiet else 1,
              "n_jobs": args.n_jobs}
    params = MODEL_TYPES[args.model][2](explicit, common, args.hidden_layer_sizes)
    accepted = set(cls().get_params(deep=False))
    for name in params:
        if name not in accepted:
            raise UsageError(f"option for {name} does not apply to {cls.__name__}")
    model = cls(**params)
    fit_options = {}
    if args.checkpoints is not None:
        # log-spaced parameter copies, saved in model.npz for 'sample --method trajectory'
        fit_options["checkpoints"] = args.checkpoints
    if args.sequence_weights:
        from .sequences import sequence_weights

        identity = 0.8 if args.identity is None else args.identity
        try:
            weights = sequence_weights(X, identity=identity, n_jobs=args.n_jobs)
        except (ValueError, TypeError) as exc:
            raise CLIError(f"cannot weight the sequences of {desc}: {exc}") from None
        fit_options["sample_weight"] = weights
        print(f"sequence weights (identity >= {identity:g}): effective number of sequences "
              f"{weights.sum():.1f} of {len(weights)}", flush=True)
    print(f"training {cls.__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})\n"
          f"  on {desc}: {X.shape[0]} rows x {X.shape[1]} features", flush=True)
    if args.device == "gpu":
        import cupy  # installed (checked above); CuPy input selects the GPU engine

        X = cupy.asarray(X)
    start = time.perf_counter()
    try:
        model.fit(X, y) if needs_labels else model.fit(X, **fit_options)
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
            _ais(model, target, args.ais_chains or 100, args.seed))
    model_path = save_model(model, os.path.join(args.out, "model.npz"))
    _write_json(os.path.join(args.out, "metrics.json"), metrics)
    print(f"trained in {seconds:.2f} s")
    kept = _checkpoint_count(model)
    if kept:
        print(f"kept {kept} checkpoints (update counts "
              f"{' '.join(str(u) for u in model.checkpoint_updates_)}) for 'fastrbm sample "
              f"--method trajectory'")
    if getattr(model, "swap_acceptance_", None) is not None:
        print("swap acceptance per pair (last epoch): "
              + " ".join(f"{a:.3f}" for a in model.swap_acceptance_))
    _print_metrics("training data:", metrics["train"])
    if test is not None:
        _print_metrics(f"held-out data ({test[2]}):", metrics["test"])
    written = [model_path, os.path.join(args.out, "metrics.json")]
    plotting = _plotting(not args.no_plots)
    if plotting is not None:
        shown = test[0] if test is not None else X
        if sequences:
            written += _sequence_pictures(plotting, model, shown, alphabet, args.out,
                                          args.n_steps or 1000,
                                          fit_options.get("sample_weight"))
        else:
            written += _pictures(plotting, model, shown, shape, args.out, args.n_steps or 1000)
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


def _sequence_pictures(plotting, model, X, alphabet, out, n_steps, weights):
    """Pictures of a sequence model: weight heat maps of the strongest hidden
    units, the site statistics of samples against the data, training curves."""
    files = []

    def path(name):
        files.append(os.path.join(out, name))
        return files[-1]

    from .sequences import ALPHABETS

    plotting.plot_sequence_weights(model, alphabet=ALPHABETS.get(alphabet, alphabet),
                                   path=path("weights.png"))
    samples = model.sample(SEQUENCE_SAMPLES, n_steps=n_steps)
    plotting.plot_sequence_statistics(X, samples, model.n_categories_, weights,
                                      path=path("statistics.png"))
    if getattr(model, "history_", None):
        plotting.plot_history(model, path=path("training_curves.png"))
    return files


def _load(path, fitted=False):
    """The model in ``path``; with ``fitted``, refuse an unfitted one."""
    try:
        model = load_model(path)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    if fitted:
        try:
            check_is_fitted(model)
        except NotFittedError:
            raise CLIError(f"{path} holds an unfitted {type(model).__name__}; train one "
                           f"first (fastrbm train)") from None
    return model


def _is_rbm(model):
    """Whether the model is a single fastrbm RBM (bound to an engine by ``_engine.bind``)."""
    return hasattr(type(model), "__fastrbm_bind__")


def _checkpoint_count(model):
    """Number of parameter copies a model kept with ``fit(checkpoints=...)``."""
    return len(getattr(model, "checkpoint_updates_", None) or ())


def _tempered_samples(model, args):
    """(samples, TemperingResult) of ``sample --method pt|trajectory``: the
    sampling functions themselves, for their swap acceptance, seeded by
    ``--seed``; samples on the data's scale, as ``model.sample`` gives them."""
    from .sampling import parallel_tempering, trajectory_tempering

    seed = 0 if args.seed is None else args.seed
    if args.method == "trajectory":
        result = trajectory_tempering(model, args.n_samples, args.n_steps, random_state=seed)
    else:
        result = parallel_tempering(model, args.n_samples, args.n_steps,
                                    n_temperatures=args.n_temperatures or 10,
                                    betas=args.betas, random_state=seed)
    samples = result.samples
    if hasattr(model, "_unstandardise"):
        # GaussianBernoulliRBM: the chains run on the standardised scale
        samples = model._unstandardise(samples)
    return samples, result


def cmd_sample(args):
    model = _load(args.model_file, fitted=True)
    if not hasattr(model, "sample"):
        raise CLIError(f"{type(model).__name__} cannot draw samples")
    tempered = args.method in ("pt", "trajectory")
    if args.n_temperatures is not None and args.method != "pt":
        raise UsageError("--n-temperatures sets the replicas of --method pt")
    if args.betas is not None and args.method != "pt":
        raise UsageError("--betas sets the inverse temperatures of --method pt")
    if (args.betas is not None and args.n_temperatures is not None
            and not isinstance(args.betas, str) and len(args.betas) != args.n_temperatures):
        raise UsageError("with numbers for --betas, --n-temperatures is their count (leave "
                         "it out); with --betas auto it is the number of replicas")
    if args.seed is not None and not tempered:
        raise UsageError("--seed applies to --method pt and trajectory (Gibbs chains follow "
                         "the model's own random_state)")
    if tempered and not _is_rbm(model):
        raise UsageError(f"--method {args.method} samples an RBM; {args.model_file} holds a "
                         f"{type(model).__name__} (use --method gibbs)")
    if args.method == "trajectory" and not _checkpoint_count(model):
        raise UsageError(f"--method trajectory needs the checkpoints of training; "
                         f"{args.model_file} kept none (train it with --checkpoints N)")
    n_features = int(getattr(model, "n_features_in_", 1))
    if args.n_samples * n_features > MAX_SAMPLE_VALUES:
        raise UsageError(f"--n-samples {args.n_samples} x {n_features} features is more than "
                         f"{MAX_SAMPLE_VALUES} values; draw at most "
                         f"{MAX_SAMPLE_VALUES // n_features} samples per call")
    # tempering holds every replica of every chain
    pt_replicas = (len(args.betas) if args.betas is not None and not isinstance(args.betas, str)
                   else args.n_temperatures or 10)
    replicas = {"gibbs": 1, "pt": pt_replicas,
                "trajectory": _checkpoint_count(model) + 1}[args.method]
    if replicas > 1 and args.n_samples * n_features * replicas > MAX_SAMPLE_VALUES:
        raise UsageError(f"--n-samples {args.n_samples} x {n_features} features x {replicas} "
                         f"replicas is more than {MAX_SAMPLE_VALUES} values; draw at most "
                         f"{MAX_SAMPLE_VALUES // (n_features * replicas)} samples per call")
    _prepare_out(args.out)
    result = None
    if tempered:
        try:
            samples, result = _tempered_samples(model, args)
        except ValueError as exc:
            raise CLIError(f"cannot sample {args.model_file} by --method {args.method}: "
                           f"{_first_line(exc)}") from None
    else:
        samples = model.sample(args.n_samples, n_steps=args.n_steps)
    # a name of its own: never the samples.png that 'train' wrote into the same folder;
    # tempered samples are named by method, so Gibbs files of the same size stay
    stem = os.path.join(args.out, f"samples_{args.n_samples}x{args.n_steps}"
                        + (f"_{args.method}" if tempered else ""))
    targets = [stem + ".npy"]
    # a sequence model's samples are codes, not images: the .npy file only
    plotting = _plotting(not args.no_plots and getattr(model, "n_categories_", None) is None)
    if plotting is not None:
        targets.append(stem + ".png")
    replaced = [t for t in targets if os.path.exists(t)]
    np.save(targets[0], samples)
    if plotting is not None:
        shown = samples[:MAX_SHOWN]
        which = (f"{args.n_samples}" if len(shown) == args.n_samples
                 else f"the first {len(shown)} of {args.n_samples}")
        chains = {"gibbs": "Gibbs chains", "pt": "parallel tempering chains",
                  "trajectory": "trajectory tempering chains"}[args.method]
        steps = "sweeps" if tempered else "steps"
        plotting.plot_samples(shown, title=f"{which} {chains} after {args.n_steps} {steps}",
                              path=targets[1])
    if tempered:
        print(f"drew {args.n_samples} samples ({args.n_steps} sweeps of "
              f"{len(result.betas)} replicas each, --method {args.method})")
        ladder = ("inverse temperatures" if args.method == "pt"
                  else "checkpoints (update counts)")
        print(f"  {ladder}: " + " ".join(f"{b:.4g}" for b in result.betas))
        print("  swap acceptance per pair: " + " ".join(f"{a:.3f}" for a in result.acceptance))
        print("wrote:\n  " + "\n  ".join(targets))
    else:
        print(f"drew {args.n_samples} samples ({args.n_steps} Gibbs steps each); wrote:\n  "
              + "\n  ".join(targets))
    if replaced:
        print("replaced the earlier " + ", ".join(replaced))
    return 0


def cmd_evaluate(args):
    named = args.data in ("digits", "fashion-mnist", "mnist")
    if args.subset is not None and not named:
        raise UsageError("--subset picks a split of digits, fashion-mnist or mnist; "
                         f"{args.data} is a file")
    if (args.ais_chains is not None or args.seed is not None) and not args.ais:
        raise UsageError("--ais-chains and --seed apply only with --ais")
    model = _load(args.model_file, fitted=True)
    if args.ais and not _is_rbm(model):
        raise UsageError(f"--ais estimates an RBM's log-likelihood; {args.model_file} holds a "
                         f"{type(model).__name__}")
    sequences = ((args.alphabet or "protein")
                 if getattr(model, "n_categories_", None) is not None else None)
    X, y, desc, _ = load_data(args.data, args.subset or "test", sequences=sequences)
    n_in = getattr(model, "n_features_in_", None)
    if n_in is not None and X.shape[1] != n_in:
        raise CLIError(f"{desc} has {X.shape[1]} features but the model was trained on {n_in}")
    try:
        metrics = _metrics(model, X, y)
        if args.ais:
            metrics.update(_ais(model, X, args.ais_chains or 100, args.seed or 0))
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
    params = model.get_params(deep=False)
    if "method" in params:
        # the sampling settings of training, and what 'sample --method trajectory' can use
        settings = [f"method {params['method']}"]
        if params["method"] == "pt":
            betas = params.get("betas")
            settings.append(f"n_temperatures {params.get('n_temperatures')}" if betas is None
                            else "betas " + " ".join(f"{b:.4g}" for b in betas))
        if params["method"] in ("pcd", "pt"):
            n_chains = params.get("n_chains")
            settings.append(f"n_chains {n_chains if n_chains is not None else 'batch_size'}")
        settings.append(f"centered {bool(params.get('centered'))}")
        if "sigma" in params:
            settings.append(f"sigma {params['sigma']}")
        settings.append(f"checkpoints kept {_checkpoint_count(model)}")
        print("training: " + ", ".join(settings))
        acceptance = getattr(model, "swap_acceptance_", None)
        if acceptance is not None:
            print("  swap acceptance per pair: " + " ".join(f"{a:.3f}" for a in acceptance))
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


def _count(maximum):
    """An argparse type: a positive integer up to ``maximum``; 1e6 notation is fine."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                number = float("nan")
            if not (np.isfinite(number) and number == int(number)):
                raise argparse.ArgumentTypeError(f"expected a positive integer, got "
                                                 f"{text!r}") from None
            value = int(number)
        if not 1 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"expected an integer from 1 to {maximum}, got "
                                             f"{text!r}")
        return value
    return parse


def _temperatures(text):
    """An argparse type: a number of replicas, 2 to MAX_TEMPERATURES."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 2 <= value <= MAX_TEMPERATURES:
        raise argparse.ArgumentTypeError(f"expected an integer from 2 to {MAX_TEMPERATURES} "
                                         f"(the replicas, beta = 0 and beta = 1 included), got "
                                         f"{text!r}")
    return value


def _betas(text):
    """An argparse type: 'auto', or inverse temperatures as comma-separated
    numbers (2 to MAX_TEMPERATURES of them; their order and range are the
    sampler's and the estimator's to check)."""
    if text.strip() == "auto":
        return "auto"
    try:
        betas = tuple(float(part) for part in text.split(","))
    except ValueError:
        betas = ()
    if not 2 <= len(betas) <= MAX_TEMPERATURES or not all(np.isfinite(betas)):
        raise argparse.ArgumentTypeError(f"expected 'auto' or 2 to {MAX_TEMPERATURES} numbers "
                                         f"separated by commas (increasing from 0 to 1), got "
                                         f"{text!r}")
    return betas


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
    parser = _Parser(
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
                 "(e.g. train-images-idx3-ubyte.gz). Values must be in [0, 1] (floats, 0/1 integers, bool) "
                 "or 0-255 intensities (uint8; whole numbers above 1 in other types are read "
                 "as 0-255 intensities, with a note)")

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
                            "(needs labels), categorical-rbm (sequences: an aligned FASTA/A2M "
                            "file or integer codes); types missing from this version say so "
                            "(default: rbm)")
    train.add_argument("--n-components", type=_positive_int,
                       help="hidden units of an rbm (default: 100 for digits, 200 for 28x28 "
                            "images)")
    train.add_argument("--hidden-layer-sizes", type=_sizes, metavar="N,N,...",
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
    train.add_argument("--method", choices=["pcd", "cd", "pt"],
                       help="pcd: persistent contrastive divergence; cd: CD-k; pt: PCD with "
                            "parallel tempering of the persistent chains (PT-PCD) (default: "
                            "pcd)")
    train.add_argument("--n-temperatures", type=_temperatures, metavar="N",
                       help="replicas per persistent chain of --method pt, equally spaced "
                            "inverse temperatures from 0 to 1 (default: 10)")
    train.add_argument("--betas", type=_betas, metavar="B,B,...",
                       help="inverse temperatures of --method pt, increasing from 0 to 1 "
                            "(e.g. 0,0.5,0.8,0.95,1; default: --n-temperatures equally spaced)")
    train.add_argument("--sigma", choices=["fixed", "learn"],
                       help="gaussian-rbm: fixed unit standard deviations on the standardised "
                            "scale, or one learned per feature (default: fixed)")
    train.add_argument("--n-chains", type=_positive_int, metavar="N",
                       help="persistent chains of --method pcd or pt (default: one per "
                            "minibatch row, --batch-size)")
    train.add_argument("--centered", action="store_true", default=None,
                       help="centred training (Melchior et al. 2016): the gradients use the "
                            "units minus sliding averages of their means; the model saved is "
                            "the equivalent uncentred RBM")
    train.add_argument("--checkpoints", type=_count(MAX_CHECKPOINTS), metavar="N",
                       help="rbm, gaussian-rbm, categorical-rbm: keep up to N copies of "
                            "the parameters in model.npz, for 'fastrbm sample --method "
                            "trajectory': the first at update 0, the others at update counts "
                            "spaced evenly on a log scale, each taken at the end of its epoch "
                            "(so fewer with few epochs)")
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
    train.add_argument("--n-steps", type=_count(MAX_STEPS),
                       help="Gibbs steps of the chains in samples.png (default: 1000)")
    train.add_argument("--ais", action="store_true",
                       help="also estimate the log-likelihood by annealed importance sampling")
    train.add_argument("--ais-chains", type=_count(MAX_AIS_CHAINS),
                       help="AIS chains, with --ais (default: 100)")
    train.add_argument("--alphabet", metavar="SYMBOLS",
                       help="categorical-rbm: alphabet of an aligned FASTA/A2M file: protein "
                            "(ACDEFGHIKLMNPQRSTVWY-), dna, rna or the symbols in code order "
                            "(default: protein)")
    train.add_argument("--sequence-weights", action="store_true",
                       help="categorical-rbm: weight each sequence by 1 / (number of "
                            "sequences at >= --identity identity)")
    train.add_argument("--identity", type=_nonneg_float,
                       help="identity threshold of --sequence-weights (default: 0.8)")
    train.add_argument("--no-plots", action="store_true", help="write no pictures")
    train.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    train.set_defaults(func=cmd_train)

    sample = sub.add_parser("sample", help="draw samples from a saved model",
                            description="Run Gibbs chains (or, with --method, parallel or "
                                        "trajectory tempering) of a saved model from random "
                                        "starts; write samples_NxSTEPS.npy and .png into "
                                        "--out (never over the samples.png of 'train').")
    sample.add_argument("model_file", metavar="MODEL", help="model file (.npz) from 'train'")
    sample.add_argument("--n-samples", type=_count(MAX_SAMPLES), default=100,
                        help=f"chains, at most {MAX_SAMPLES} (default: 100)")
    sample.add_argument("--n-steps", type=_count(MAX_STEPS), default=1000,
                        help=f"Gibbs steps per chain (sweeps with --method pt or trajectory), "
                             f"at most {MAX_STEPS} (default: 1000)")
    sample.add_argument("--method", choices=["gibbs", "pt", "trajectory"], default="gibbs",
                        help="gibbs: independent Gibbs chains; pt: parallel tempering between "
                             "the base model (beta = 0) and the model; trajectory: tempering "
                             "over the checkpoints of training (a model trained with "
                             "--checkpoints); pt and trajectory print the swap acceptance per "
                             "pair and name the files samples_NxSTEPS_METHOD (default: gibbs)")
    sample.add_argument("--n-temperatures", type=_temperatures, metavar="N",
                        help="replicas per chain of --method pt (default: 10)")
    sample.add_argument("--betas", type=_betas, metavar="B,B,...|auto",
                        help="inverse temperatures of --method pt, increasing from 0 to 1, or "
                             "'auto' (a ladder adapted to this model from --n-temperatures "
                             "replicas; fastrbm.sampling.parallel_tempering) (default: "
                             "equally spaced)")
    sample.add_argument("--seed", type=int,
                        help="random seed of --method pt or trajectory (default: 0)")
    sample.add_argument("--out", default="fastrbm-out", metavar="DIR",
                        help="output folder (default: ./fastrbm-out)")
    sample.add_argument("--no-plots", action="store_true", help="write the .npy file only")
    sample.set_defaults(func=cmd_sample)

    evaluate = sub.add_parser("evaluate", help="metrics of a saved model on data",
                              description="Reconstruction error, pseudo-likelihood, mean free "
                                          "energy, accuracy (classifiers with labels) and, with "
                                          "--ais, the AIS log-likelihood.")
    evaluate.add_argument("model_file", metavar="MODEL", help="model file (.npz) from 'train'")
    evaluate.add_argument("--data", required=True, metavar="DATA", help=data_help)
    evaluate.add_argument("--subset", choices=["train", "test"],
                          help="split of digits, fashion-mnist or mnist (default: test)")
    evaluate.add_argument("--ais", action="store_true",
                          help="estimate the log-likelihood by annealed importance sampling")
    evaluate.add_argument("--ais-chains", type=_count(MAX_AIS_CHAINS),
                          help="AIS chains, with --ais (default: 100)")
    evaluate.add_argument("--seed", type=int, help="AIS random seed, with --ais (default: 0)")
    evaluate.add_argument("--alphabet", metavar="SYMBOLS",
                          help="alphabet of an aligned FASTA/A2M file, for a categorical-rbm "
                               "(default: protein)")
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
        0 on success, 1 on an error with data, a model file or training, 2 on
        a command line that cannot work (bad, too large or inapplicable
        options); every error is one line on stderr.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 2
    except CLIError as exc:
        print(f"fastrbm: error: {_first_line(exc)}", file=sys.stderr)
        return exc.status
    try:
        with warnings.catch_warnings():
            # the filters stay the user's (-W, PYTHONWARNINGS); only the format changes
            warnings.showwarning = _warning_printer()
            return args.func(args)
    except CLIError as exc:
        print(f"fastrbm: error: {_first_line(exc)}", file=sys.stderr)
        return exc.status
    except (ImportError, ValueError, TypeError, OverflowError, MemoryError) as exc:
        # e.g. matplotlib or CuPy missing, or an estimator's own error
        print(f"fastrbm: error: {_first_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fastrbm: interrupted", file=sys.stderr)
        return 130


def _first_line(exc):
    """An exception's message as one line (its first non-empty line)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _warning_printer():
    """warnings.showwarning for one CLI command: one line, no source location,
    and each distinct warning once (a command runs several estimator calls
    that may each warn about the same data)."""
    shown = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = f"fastrbm: warning: {' '.join(str(message).split())} ({category.__name__})"
        if text not in shown:
            shown.add(text)
            print(text, file=sys.stderr)

    return show


if __name__ == "__main__":
    sys.exit(main())
