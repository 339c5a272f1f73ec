"""Model files: save and load fastrbm estimators without pickle.

Format (``format_version`` 1)
-----------------------------
A model file is a NumPy ``.npz`` archive (a zip of ``.npy`` files) that
``numpy.load(path, allow_pickle=False)`` reads:

* ``__fastrbm__``: a 0-d unicode array holding one JSON document::

      {"format": "fastrbm-model", "format_version": 1,
       "fastrbm_version": "0.1.0", "class": "BernoulliRBM",
       "params": <constructor parameters>, "fitted": [names of fitted attributes],
       "state": <every instance attribute that is not a parameter>}

* ``a0``, ``a1``, ...: the arrays, referred to from the JSON as
  ``{"__ndarray__": "a0"}``.

Values in ``params`` and ``state`` are JSON numbers, strings, booleans and
null, or tagged objects: ``{"__ndarray__": key}``, ``{"__list__": [...]}``,
``{"__tuple__": [...]}``, ``{"__dict__": {...}}``, ``{"__scalartype__": "float32"}`` (a NumPy
scalar type such as ``dtype=numpy.float32``), ``{"__dtype__": "float32"}``
(a ``numpy.dtype`` instance),
``{"__strarray__": key}`` (an object array of strings, e.g. ``classes_``),
``{"__function__": "fastrbm.dbn:hinton_momentum"}`` (one of the schedule
functions listed in ``SCHEDULES``, such as the DBN's default momentum
schedule) and
``{"__estimator__": {"class": ..., "params": ..., "state": ...}}`` (a
nested estimator, e.g. the layers of a DBN).  A value of any other type
(a user's momentum schedule function, a ``RandomState``) cannot be stored:
saving raises a ``TypeError`` that names it, and pickle remains available for
such models.

Files also carry ``"arrays": {key: {"shape": [...], "dtype": "<f8"}}``
beside ``class``: the shape and type of every stored array, checked against
each ``.npy`` header before anything is allocated.  Files written before this
table existed are read the same way, minus that comparison; readers that
predate it ignore it, so the format version stays 1.

What a model file can and cannot do
-----------------------------------
Loading never unpickles and never imports or calls anything a file names
beyond two fixed lists: it builds only the classes in ``MODEL_CLASSES`` and
resolves functions only from ``SCHEDULES``; anything else is a ``ValueError``
at load.  Only the arrays the metadata refers to are read (other archive
members are never decompressed); each one's ``.npy`` header must agree with
the archive entry's size (and with the metadata's ``arrays`` table) before
memory is allocated, and object dtypes are refused.  Metadata nesting is
limited to ``MAX_DEPTH`` levels and its size to ``MAX_METADATA_BYTES``.
Counters (``n_updates_``, ...) must be integers in the range the engines
count in, and the parameter arrays of an RBM must agree with each other
(``components_`` against the intercepts, ``n_components`` and
``n_features_in_``); a DBN must have one RBM per hidden layer.  Every problem
is one ``ValueError`` that names the file and the field.  What such checks
cannot bound is an array the metadata names with an honestly declared size:
a file holding a 1 GiB weight matrix takes 1 GiB to load, as it should.

A file whose ``format_version`` is newer than this version of fastrbm
understands raises a ``ValueError`` saying to upgrade.
"""
import importlib
import json
import math
import os
import zipfile
import zlib

import numpy as np

from ._version import __version__

FORMAT_NAME = "fastrbm-model"
FORMAT_VERSION = 1
METADATA_KEY = "__fastrbm__"

# class name in the file -> "module:attribute"; adding an estimator type to
# model files is one entry here (its state is discovered generically)
MODEL_CLASSES = {
    "BernoulliRBM": "fastrbm.rbm:BernoulliRBM",
    "GaussianBernoulliRBM": "fastrbm.gaussian:GaussianBernoulliRBM",
    "DBN": "fastrbm.dbn:DBN",
    "DBNClassifier": "fastrbm.dbn:DBNClassifier",
}

# the only functions a model file may name (schedules the package offers);
# a file naming anything else is refused, so loading cannot call other code
SCHEDULES = {
    "fastrbm.dbn:hinton_momentum": ("fastrbm.dbn", "hinton_momentum"),
}

# limits on what a file may ask of the loader (far above any real model's)
MAX_DEPTH = 64
MAX_METADATA_BYTES = 64 << 20

# integer counters of the fitted state -> (smallest, largest) allowed; the
# engines count updates and sampling calls in 32 bits
_COUNTERS = {
    "n_features_in_": (1, 2**31 - 1),
    "n_updates_": (0, 2**32 - 1),
    "n_epochs_": (0, 2**32 - 1),
    "n_iter_": (0, 2**32 - 1),
    "_sample_calls": (0, 2**32 - 1),
}
# random-number key material: (dtype, shape)
_KEY_ARRAYS = {"_seed_words": (np.uint32, (4,)), "_key": (np.uint32, (2,))}

# dtypes an array in a model file may have (never object)
_ARRAY_KINDS = "biufU"


def model_class(name):
    """The estimator class registered under ``name``.

    Parameters
    ----------
    name : str
        A key of ``MODEL_CLASSES``, e.g. ``"BernoulliRBM"``.

    Returns
    -------
    cls : type
        The class.

    Raises
    ------
    ValueError
        If ``name`` is not registered or this version of fastrbm lacks it.
    """
    if not isinstance(name, str) or name not in MODEL_CLASSES:
        raise ValueError(f"unknown model class {name!r}; known: {', '.join(MODEL_CLASSES)}")
    module_name, attr = MODEL_CLASSES[name].split(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError):
        raise ValueError(f"model class {name} is not available in this version of fastrbm "
                         f"({__version__})") from None


def _schedule(name):
    """The registered schedule function ``name`` ("module:function"), or None."""
    if name not in SCHEDULES:
        return None
    module_name, attr = SCHEDULES[name]
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return None


def _schedule_name(value):
    """The registry name of a schedule function, or None if it is not registered."""
    if not callable(value):
        return None
    for name in SCHEDULES:
        if _schedule(name) is value:
            return name
    return None


def _is_model(value):
    """A fastrbm estimator of a registered class (not a look-alike of the same name)."""
    name = type(value).__name__
    if name not in MODEL_CLASSES:
        return False
    try:
        return type(value) is model_class(name)
    except ValueError:
        return False


class _Encoder:
    """Turns parameter and state values into JSON plus a dict of arrays."""

    def __init__(self):
        self.arrays = {}

    def _array(self, arr):
        key = f"a{len(self.arrays)}"
        self.arrays[key] = arr
        return key

    def encode(self, value, where):
        # bool before int: bool is an int subclass but must stay a bool
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, np.generic) and not isinstance(value, np.object_):
            return value.item()
        if isinstance(value, type) and issubclass(value, np.generic):
            return {"__scalartype__": np.dtype(value).name}
        if isinstance(value, np.dtype):
            return {"__dtype__": value.name}
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                if all(isinstance(v, str) for v in value.ravel()):
                    return {"__strarray__": self._array(value.astype(str))}
                raise TypeError(f"cannot store {where} (an object array) in a model file")
            return {"__ndarray__": self._array(np.array(value))}
        if isinstance(value, list):
            return {"__list__": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"cannot store {where}: a dict with non-string keys")
            return {"__dict__": {k: self.encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
        if _is_model(value):
            return {"__estimator__": self.estimator(value, where)}
        schedule = _schedule_name(value)
        if schedule is not None:
            return {"__function__": schedule}
        what = "a function" if callable(value) else f"a {type(value).__name__}"
        raise TypeError(f"cannot store {where} ({what}) in a fastrbm model file; "
                        f"use pickle for this model, or set it to a plain value")

    def estimator(self, est, where):
        name = type(est).__name__
        params = est.get_params(deep=False)
        state = {k: v for k, v in vars(est).items() if k not in params}
        return {
            "class": name,
            "params": {k: self.encode(v, f"{where}.{k}") for k, v in params.items()},
            "fitted": sorted(k for k in state if k.endswith("_") and not k.startswith("_")),
            "state": {k: self.encode(v, f"{where}.{k}") for k, v in state.items()},
        }


class _CorruptField(ValueError):
    """A problem with one field of the metadata (``where``), reported with the file."""

    def __init__(self, where, message):
        super().__init__(f"{where}: {message}")


def _referenced_arrays(value, where, found, depth=0):
    """Collect {array key: field} for every array the metadata refers to."""
    if depth > MAX_DEPTH:
        raise _CorruptField(where, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in ("__ndarray__", "__strarray__"):
                if not isinstance(inner, str):
                    raise _CorruptField(where, f"array key must be a string, got {inner!r}")
                found.setdefault(inner, where)
            else:
                _referenced_arrays(inner, f"{where}.{key}", found, depth + 1)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            _referenced_arrays(inner, f"{where}[{i}]", found, depth + 1)
    return found


def _decode(value, arrays, where, depth=0):
    if depth > MAX_DEPTH:
        raise _CorruptField(where, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, list):
        raise _CorruptField(where, "a bare JSON list (lists are tagged __list__)")
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise _CorruptField(where, f"expected one tagged value, got keys {sorted(value)[:5]}")
    (tag, inner), = value.items()
    if tag in ("__ndarray__", "__strarray__"):
        arr = arrays[inner]
        if tag == "__strarray__":
            if arr.dtype.kind != "U":
                raise _CorruptField(where, f"a string array holds dtype {arr.dtype}")
            return arr.astype(object)
        if arr.dtype.kind not in "biuf":
            raise _CorruptField(where, f"an array of dtype {arr.dtype} (numbers expected)")
        return arr
    if tag in ("__list__", "__tuple__"):
        if not isinstance(inner, list):
            raise _CorruptField(where, f"{tag} must hold a JSON list")
        items = [_decode(v, arrays, f"{where}[{i}]", depth + 1) for i, v in enumerate(inner)]
        return items if tag == "__list__" else tuple(items)
    if tag == "__dict__":
        if not isinstance(inner, dict):
            raise _CorruptField(where, "__dict__ must hold a JSON object")
        return {k: _decode(v, arrays, f"{where}[{k!r}]", depth + 1) for k, v in inner.items()}
    if tag in ("__dtype__", "__scalartype__"):
        try:
            dtype = np.dtype(inner) if isinstance(inner, str) else None
        except TypeError:
            dtype = None
        if dtype is None or dtype.kind not in "biuf":
            raise _CorruptField(where, f"{inner!r} is not a numeric dtype name")
        return dtype if tag == "__dtype__" else dtype.type
    if tag == "__function__":
        func = _schedule(inner) if isinstance(inner, str) else None
        if func is None:
            raise _CorruptField(where, f"refusing function {inner!r}: a model file may name "
                                       f"only the schedules {', '.join(SCHEDULES)}")
        return func
    if tag == "__estimator__":
        return _build(inner, arrays, where, depth + 1)
    raise _CorruptField(where, f"unknown tag {tag!r}")


def _check_counter(name, value, where):
    low, high = _COUNTERS[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _CorruptField(f"{where}.{name}", f"expected an integer in [{low}, {high}], "
                                               f"got {value!r}")


def _check_state(est, params, state, where):
    """Load-time consistency of what the metadata says (see the module docstring)."""
    for name, (dtype, shape) in _KEY_ARRAYS.items():
        value = state.get(name)
        if value is not None and (not isinstance(value, np.ndarray) or value.dtype != dtype
                                  or value.shape != shape):
            raise _CorruptField(f"{where}.{name}", f"expected a {np.dtype(dtype)} array of "
                                                   f"shape {shape}")
    W = state.get("components_")
    if W is not None:
        if not isinstance(W, np.ndarray) or W.ndim != 2 or W.dtype.kind != "f" or 0 in W.shape:
            raise _CorruptField(f"{where}.components_",
                                f"expected a non-empty 2-D float array, got "
                                f"{getattr(W, 'shape', type(W).__name__)}")
        H, D = W.shape
        expected = {"intercept_hidden_": (H,), "intercept_visible_": (D,)}
        for name, shape in expected.items():
            value = state.get(name)
            if not isinstance(value, np.ndarray) or value.shape != shape:
                raise _CorruptField(f"{where}.{name}", f"expected shape {shape} to match "
                                                       f"components_ {W.shape}, got "
                                                       f"{getattr(value, 'shape', value)!r}")
        if params.get("n_components") != H:
            raise _CorruptField(f"{where}.params.n_components",
                                f"{params.get('n_components')!r} disagrees with "
                                f"components_ {W.shape}")
        if state.get("n_features_in_") != D:
            raise _CorruptField(f"{where}.n_features_in_",
                                f"{state.get('n_features_in_')!r} disagrees with "
                                f"components_ {W.shape}")
        chains = state.get("h_samples_")
        if chains is not None and (not isinstance(chains, np.ndarray) or chains.ndim != 2
                                   or chains.shape[1] != H):
            raise _CorruptField(f"{where}.h_samples_", f"expected {H} columns to match "
                                                       f"components_ {W.shape}")
    if "rbms_" in state:
        rbms = state["rbms_"]
        sizes = params.get("hidden_layer_sizes")
        if not isinstance(rbms, list) or not rbms or not all(_is_model(r) for r in rbms):
            raise _CorruptField(f"{where}.rbms_", "expected a non-empty list of RBMs")
        if isinstance(sizes, (list, tuple)) and len(sizes) != len(rbms):
            raise _CorruptField(f"{where}.rbms_", f"{len(rbms)} RBMs for "
                                                  f"{len(sizes)} hidden layers {tuple(sizes)}")
        # each layer reads what the one below outputs
        width = state.get("n_features_in_")
        for i, rbm in enumerate(rbms):
            W = getattr(rbm, "components_", None)
            if W is not None and W.shape[1] != width:
                raise _CorruptField(f"{where}.rbms_[{i}].components_",
                                    f"shape {W.shape} does not take the {width} inputs of "
                                    f"{'the data' if i == 0 else f'layer {i - 1}'}")
            width = W.shape[0] if W is not None else None
    if "coefs_" in state:
        coefs, intercepts = state["coefs_"], state.get("intercepts_")
        if (not isinstance(coefs, list) or not coefs or not isinstance(intercepts, list)
                or len(intercepts) != len(coefs)):
            raise _CorruptField(f"{where}.coefs_", "expected non-empty lists coefs_ and "
                                                   "intercepts_ of equal length")
        width = state.get("n_features_in_")
        # coefs_[i] is (n_out, n_in), as the classifier documents
        for i, (W, b) in enumerate(zip(coefs, intercepts)):
            if (not isinstance(W, np.ndarray) or W.ndim != 2 or W.shape[1] != width
                    or 0 in W.shape or not isinstance(b, np.ndarray) or b.shape != W.shape[:1]):
                raise _CorruptField(f"{where}.coefs_[{i}]",
                                    f"expected an (n, {width}) array with intercepts_[{i}] of "
                                    f"shape (n,), got {getattr(W, 'shape', W)!r} and "
                                    f"{getattr(b, 'shape', b)!r}")
            width = W.shape[0]


def _build(spec, arrays, where="model", depth=0):
    if not isinstance(spec, dict):
        raise _CorruptField(where, f"expected a JSON object, got {type(spec).__name__}")
    for field, kind in (("class", str), ("params", dict), ("state", dict)):
        if not isinstance(spec.get(field), kind):
            raise _CorruptField(f"{where}.{field}", f"expected a JSON {kind.__name__}, got "
                                                    f"{type(spec.get(field)).__name__}")
    fitted = spec.get("fitted", [])
    if not isinstance(fitted, list) or not all(isinstance(n, str) for n in fitted):
        raise _CorruptField(f"{where}.fitted", "expected a list of attribute names")
    try:
        cls = model_class(spec["class"])
    except ValueError as exc:
        raise _CorruptField(f"{where}.class", str(exc)) from None
    params = {k: _decode(v, arrays, f"{where}.params.{k}", depth + 1)
              for k, v in spec["params"].items()}
    accepted = set(cls().get_params(deep=False))
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise _CorruptField(f"{where}.params", f"{spec['class']} has no parameter "
                                               f"{unknown[0]!r}")
    state = {}
    for name, value in spec["state"].items():
        if not name.isidentifier() or name.startswith("__"):
            raise _CorruptField(f"{where}.state", f"refusing attribute name {name!r}")
        state[name] = _decode(value, arrays, f"{where}.{name}", depth + 1)
        if name in _COUNTERS:
            _check_counter(name, state[name], where)
    _check_state(cls, params, state, where)
    est = cls(**params)
    for name, value in state.items():
        setattr(est, name, value)
    return est


def _model_path(path):
    """``path``, or ``path + '.npz'`` when only that exists (as save_model names it)."""
    path = os.fspath(path)
    if not os.path.exists(path) and not path.endswith(".npz") and os.path.exists(path + ".npz"):
        return path + ".npz"
    return path


def save_model(model, path):
    """Save a fastrbm estimator (fitted or not) to a ``.npz`` model file.

    Parameters
    ----------
    model : estimator
        An instance of a class in ``MODEL_CLASSES`` (e.g. BernoulliRBM).
    path : str or os.PathLike
        Destination; ``.npz`` is appended if missing (as ``numpy.savez`` does).

    Returns
    -------
    path : str
        The path written.

    Raises
    ------
    TypeError
        If the model is not a fastrbm estimator (scikit-learn's BernoulliRBM
        included: it has the same name but not the same state), or holds a
        value the format cannot store (e.g. a momentum schedule function
        outside ``SCHEDULES``); pickle the model instead.

    Notes
    -----
    The format is described in this module's docstring.  Models on a GPU
    (CuPy arrays) must be moved with ``model.to_numpy()`` first.
    """
    if not _is_model(model):
        cls = type(model)
        raise TypeError(f"save_model stores fastrbm estimators "
                        f"({', '.join(MODEL_CLASSES)}), not {cls.__module__}.{cls.__qualname__}")
    encoder = _Encoder()
    spec = encoder.estimator(model, type(model).__name__)
    table = {key: {"shape": list(arr.shape), "dtype": arr.dtype.str}
             for key, arr in encoder.arrays.items()}
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "fastrbm_version": __version__, "arrays": table, **spec}
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    # the JSON goes in as a 0-d unicode array: readable without pickle
    np.savez(path, **{METADATA_KEY: np.array(json.dumps(meta))}, **encoder.arrays)
    return path


def read_metadata(path):
    """The JSON metadata of a model file, without building the model.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save_model` (``.npz`` may be left out).

    Returns
    -------
    meta : dict
        The metadata (format version, class, params, fitted names, state) as
        stored, arrays still referred to by key.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not a fastrbm model file, is corrupt or comes from a newer
        format version.
    """
    meta, _ = _open(path, load_arrays=False)
    return meta


def _read_member(archive, key, info, expected, where, max_bytes=None):
    """One ``.npy`` member, its header checked before any allocation."""
    fmt = np.lib.format
    # the declared sizes are the file's word; bound them by what its bytes can
    # hold (deflate expands at most 1032:1) so that a lying entry costs nothing
    if info.compress_type == zipfile.ZIP_STORED:
        bound = info.compress_size
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        bound = 1032 * info.compress_size + 1024
    else:
        raise _CorruptField(where, f"array {key} uses zip compression method "
                                   f"{info.compress_type}; model files use stored or deflate")
    if info.compress_size > os.path.getsize(archive.filename) or info.file_size > bound:
        raise _CorruptField(where, f"array {key} claims {info.file_size} bytes, more than its "
                                   f"{info.compress_size} stored bytes can hold")
    with archive.open(info) as fh:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(fh)
        else:
            raise _CorruptField(where, f"unsupported .npy version {version}")
        if dtype.hasobject or dtype.kind not in _ARRAY_KINDS or dtype.fields is not None:
            raise _CorruptField(where, f"array {key} has dtype {dtype}, which model files "
                                       f"never hold")
        # Python integers: a header claiming 10**12 elements cannot overflow here
        nbytes = math.prod(shape) * dtype.itemsize
        available = info.file_size - fh.tell()
        if nbytes != available:
            raise _CorruptField(where, f"array {key}'s header says shape {shape} of {dtype} "
                                       f"({nbytes} bytes) but the archive entry holds "
                                       f"{available} bytes")
        if expected is not None:
            try:
                want = (tuple(expected["shape"]), np.dtype(expected["dtype"]))
            except (KeyError, TypeError, ValueError):
                raise _CorruptField(f"arrays.{key}", f"malformed entry {expected!r}") from None
            if want != (shape, dtype):
                raise _CorruptField(where, f"array {key} has shape {shape} and dtype {dtype}, "
                                           f"the metadata says {want[0]} {want[1]}")
        if max_bytes is not None and nbytes > max_bytes:
            raise _CorruptField(where, f"{nbytes} bytes, more than the {max_bytes} allowed")
        try:
            arr = np.empty(shape[::-1] if fortran else shape, dtype=dtype)
        except MemoryError:
            raise _CorruptField(where, f"array {key} needs {nbytes} bytes, more memory than "
                                       f"is available") from None
        view = memoryview(arr.reshape(-1).view(np.uint8)) if arr.size else memoryview(b"")
        got = 0
        while got < nbytes:
            n = fh.readinto(view[got:])
            if not n:
                raise _CorruptField(where, f"array {key} is truncated ({got} of {nbytes} "
                                           f"bytes)")
            got += n
    return arr.T if fortran else arr


def _open(path, load_arrays=True):
    path = _model_path(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory, not a model file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a fastrbm model file (expected a .npz archive "
                         f"written by fastrbm.save_model)")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename[:-4]: info for info in archive.infolist()
                       if info.filename.endswith(".npy")}
            if METADATA_KEY not in members:
                raise ValueError(f"{path} is a .npz archive but not a fastrbm model file "
                                 f"(no {METADATA_KEY} entry)")
            text = _read_member(archive, METADATA_KEY, members[METADATA_KEY], None,
                                "metadata", MAX_METADATA_BYTES)
            if text.dtype.kind != "U" or text.shape != ():
                raise _CorruptField("metadata", f"expected a 0-d string, got {text.dtype} "
                                                f"{text.shape}")
            meta = json.loads(str(text[()]))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
                found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
                raise ValueError(f"{path} is not a fastrbm model file (format {found!r})")
            version = meta.get("format_version")
            if not isinstance(version, int) or isinstance(version, bool) \
                    or version > FORMAT_VERSION:
                raise ValueError(
                    f"{path} uses model file format version {version!r}, written by fastrbm "
                    f"{meta.get('fastrbm_version', '?')}; this fastrbm ({__version__}) reads "
                    f"versions up to {FORMAT_VERSION}: upgrade fastrbm to load it")
            arrays = {}
            if load_arrays:
                table = meta.get("arrays")
                if table is not None and not isinstance(table, dict):
                    raise _CorruptField("arrays", f"expected a JSON object, got "
                                                  f"{type(table).__name__}")
                wanted = _referenced_arrays(meta.get("state"), "model", {})
                wanted.update(_referenced_arrays(meta.get("params"), "model.params", {}))
                for key, where in wanted.items():
                    if key not in members or key == METADATA_KEY:
                        raise _CorruptField(where, f"array {key!r} is missing from the archive")
                    expected = table.get(key) if table is not None else None
                    if table is not None and expected is None:
                        raise _CorruptField(where, f"array {key!r} is not in the metadata's "
                                                   f"arrays table")
                    arrays[key] = _read_member(archive, key, members[key], expected, where)
    except _CorruptField as exc:
        raise ValueError(f"{path}: corrupt fastrbm model file: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
            RecursionError, UnicodeError, json.JSONDecodeError, ValueError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(path):
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: corrupt fastrbm model file ({message})") from None
    return meta, arrays


def load_model(path):
    """Load an estimator saved by :func:`save_model` (no pickle involved).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` model file; ``.npz`` may be left out, as with
        :func:`save_model`.

    Returns
    -------
    model : estimator
        The estimator with its parameters and all fitted state (weights,
        persistent chains, momentum buffers, random-number counters,
        history), so that ``transform``, ``sample`` and further
        ``partial_fit`` calls give the same results as the saved model.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not a fastrbm model file, is corrupt (the message names the
        file and the field), comes from a newer format version, names a class
        this version lacks or a function outside ``SCHEDULES``.

    Notes
    -----
    What loading may and may not do is described in this module's docstring:
    no code runs, only named arrays are read, sizes are checked first.
    """
    path = _model_path(path)
    meta, arrays = _open(path)
    try:
        return _build(meta, arrays)
    except _CorruptField as exc:
        raise ValueError(f"{path}: corrupt fastrbm model file: {exc}") from None
    except (KeyError, TypeError, AttributeError, IndexError, OverflowError,
            RecursionError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: corrupt fastrbm model file ({message})") from None
