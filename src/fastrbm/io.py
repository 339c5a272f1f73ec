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
``{"__function__": "fastrbm.dbn:hinton_momentum"}`` (a module-level function
of fastrbm itself, such as the DBN's default momentum schedule) and
``{"__estimator__": {"class": ..., "params": ..., "state": ...}}`` (a
nested estimator, e.g. the layers of a DBN).  A value of any other type
(a user's momentum schedule function, a ``RandomState``) cannot be stored:
saving raises a ``TypeError`` that names it, and pickle remains available for
such models.

Loading only ever builds the classes listed in ``MODEL_CLASSES`` (one entry
per estimator type), so a model file cannot run arbitrary code.  A file whose
``format_version`` is newer than this version of fastrbm understands raises a
``ValueError`` saying to upgrade.
"""
import importlib
import json
import os
import zipfile

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
    if name not in MODEL_CLASSES:
        raise ValueError(f"unknown model class {name!r}; known: {', '.join(MODEL_CLASSES)}")
    module_name, attr = MODEL_CLASSES[name].split(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError):
        raise ValueError(f"model class {name} is not available in this version of fastrbm "
                         f"({__version__})") from None


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
        if type(value).__name__ in MODEL_CLASSES:
            return {"__estimator__": self.estimator(value, where)}
        if _is_fastrbm_function(value):
            return {"__function__": f"{value.__module__}:{value.__qualname__}"}
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


def _is_fastrbm_function(value):
    """A module-level function defined in fastrbm (storable by name)."""
    module = getattr(value, "__module__", None) or ""
    qualname = getattr(value, "__qualname__", "")
    return (callable(value) and module.startswith("fastrbm.") and qualname.isidentifier()
            and getattr(importlib.import_module(module), qualname, None) is value)


def _function(name):
    module_name, _, attr = name.partition(":")
    # only fastrbm's own functions: a model file must not reach arbitrary code
    if not module_name.startswith("fastrbm.") or not attr.isidentifier():
        raise ValueError(f"corrupt model file: refusing function {name!r}")
    try:
        func = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        raise ValueError(f"model file needs {name}, which this version of fastrbm "
                         f"({__version__}) lacks") from None
    if not callable(func):
        raise ValueError(f"corrupt model file: {name} is not a function")
    return func


def _decode(value, arrays):
    if not isinstance(value, dict):
        return value
    (tag, inner), = value.items()
    if tag == "__ndarray__":
        return arrays[inner]
    if tag == "__strarray__":
        return arrays[inner].astype(object)
    if tag == "__list__":
        return [_decode(v, arrays) for v in inner]
    if tag == "__tuple__":
        return tuple(_decode(v, arrays) for v in inner)
    if tag == "__dict__":
        return {k: _decode(v, arrays) for k, v in inner.items()}
    if tag == "__dtype__":
        return np.dtype(inner)
    if tag == "__scalartype__":
        return np.dtype(inner).type
    if tag == "__function__":
        return _function(inner)
    if tag == "__estimator__":
        return _build(inner, arrays)
    raise ValueError(f"corrupt model file: unknown tag {tag!r}")


def _build(spec, arrays):
    cls = model_class(spec["class"])
    params = {k: _decode(v, arrays) for k, v in spec["params"].items()}
    est = cls(**params)
    for name, value in spec["state"].items():
        setattr(est, name, _decode(value, arrays))
    return est


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
        If the model is not a fastrbm estimator, or holds a value the format
        cannot store (e.g. a momentum schedule function); pickle the model
        instead.

    Notes
    -----
    The format is described in this module's docstring.  Models on a GPU
    (CuPy arrays) must be moved with ``model.to_numpy()`` first.
    """
    if type(model).__name__ not in MODEL_CLASSES:
        raise TypeError(f"save_model stores fastrbm estimators "
                        f"({', '.join(MODEL_CLASSES)}), not {type(model).__name__}")
    encoder = _Encoder()
    spec = encoder.estimator(model, type(model).__name__)
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "fastrbm_version": __version__, **spec}
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
        A file written by :func:`save_model`.

    Returns
    -------
    meta : dict
        The metadata (format version, class, params, fitted names, state) as
        stored, arrays still referred to by key.
    """
    meta, _ = _open(path, load_arrays=False)
    return meta


def _open(path, load_arrays=True):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory, not a model file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a fastrbm model file (expected a .npz archive "
                         f"written by fastrbm.save_model)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if METADATA_KEY not in archive.files:
                raise ValueError(f"{path} is a .npz archive but not a fastrbm model file "
                                 f"(no {METADATA_KEY} entry)")
            meta = json.loads(str(archive[METADATA_KEY][()]))
            arrays = ({k: archive[k] for k in archive.files if k != METADATA_KEY}
                      if load_arrays else {})
    except (OSError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: corrupt fastrbm model file ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is not a fastrbm model file (format {meta.get('format')!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} uses model file format version {version}, written by fastrbm "
            f"{meta.get('fastrbm_version', '?')}; this fastrbm ({__version__}) reads versions "
            f"up to {FORMAT_VERSION}: upgrade fastrbm to load it")
    return meta, arrays


def load_model(path):
    """Load an estimator saved by :func:`save_model` (no pickle involved).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` model file.

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
        If it is not a fastrbm model file, is corrupt, comes from a newer
        format version, or names a class this version lacks.
    """
    meta, arrays = _open(path)
    try:
        return _build(meta, arrays)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{os.fspath(path)}: corrupt fastrbm model file ({exc!r})") from None
