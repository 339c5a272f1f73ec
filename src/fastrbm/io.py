"""Model files: save and load fastrbm estimators without pickle.

Format (``format_version`` 2)
-----------------------------
A model file is a NumPy ``.npz`` archive (a zip of ``.npy`` files) that
``numpy.load(path, allow_pickle=False)`` reads:

* ``__fastrbm__``: a 0-d unicode array holding one JSON document::

      {"format": "fastrbm-model", "format_version": 2,
       "fastrbm_version": "0.1.0", "class": "BernoulliRBM",
       "arrays": {key: {"shape": [...], "dtype": "<f8"}},
       "params": <constructor parameters>,
       "fitted": [names of the public fitted attributes stored],
       "state": {schema key: value}}

* ``a0``, ``a1``, ...: the arrays, referred to from the JSON as
  ``{"__ndarray__": "a0"}``; ``arrays`` gives the shape and type of each,
  checked against its ``.npy`` header before anything is allocated.

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
nested estimator, e.g. the layers of a DBN, its state keyed by its own
schema).  A value of any other type (a user's momentum schedule function, a
``RandomState``) cannot be stored: saving raises a ``TypeError`` that names
it, and pickle remains available for such models.

The state schema
----------------
``params`` holds every constructor parameter (``get_params(deep=False)``).
``state`` holds exactly the fitted state that ``STATE_SCHEMA`` lists for the
class: one :class:`Field` per entry, giving its key in the file, the
attribute it comes from, its kind (array, scalar, list of arrays, nested
estimator, JSON lists), whether a fitted model must have it, and the check
applied when it is loaded.  The keys are the format's; the attribute names
appear only in that table, so renaming an attribute is one line there.

What is kept is what a user needs to use the model and to go on training it
exactly: the parameters (``components_``, the intercepts, ``sigma_`` of a
Gaussian RBM as ``log_variance``, ``mean_``/``scale_``, a DBN's layers, a
classifier's ``coefs_``/``intercepts_``/``classes_``), and the training
state that ``partial_fit`` and ``sample`` continue from: the persistent
chains (``h_samples_``), the momentum buffers (``velocity``), the running
hidden activity of the sparsity target, the random-number key and seed
words, the update, epoch and sampling-call counters, and ``history_``.  A
loaded model therefore transforms, samples and trains on bit for bit as the
saved one would.  Not kept: any other attribute (one a user added, a cache,
anything a later version of an estimator holds that the schema does not
list), and values on a GPU (move the model with ``to_numpy()`` first).  A
model with part of the required state (``components_`` but no
``n_features_in_``, say) is refused when saved rather than written as a file
that cannot be loaded.

A file whose state has a key that is not in the class's schema, or that has
some fitted state but lacks a required key, is refused at load.

Format 1
--------
Format 1 (fastrbm up to commit 0e1971b) is the same archive without the
schema: ``state`` held every instance attribute that was not a parameter,
under its attribute name, and ``arrays`` may be absent (files written before
that table existed).  It still loads: ``V1_KEYS`` maps the format-1 names
that differ from schema keys (the private ones: ``_velocity`` ->
``velocity``, ``_hidden_activity`` -> ``hidden_activity``, ``_visible_means``
-> ``visible_means``, ``_seed_words`` -> ``seed_words``, ``_key`` -> ``key``,
``_sample_calls`` -> ``sample_calls``, ``_log_var`` -> ``log_variance``);
every other format-1 name is its schema key.  From there a format-1 file is
checked and loaded as a format-2 file is; a name that maps to no key of the
schema is refused.  Saving always writes format 2.

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
Each state entry passes its schema check (counters such as ``n_updates_``
are integers in the range the engines count in, random-number keys are
uint32 arrays of their length, parameters are float arrays), and the
parameter arrays of an RBM must agree with each other
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
from typing import Callable, NamedTuple

import numpy as np

from ._backend import is_cupy_array, to_host
from ._version import __version__

FORMAT_NAME = "fastrbm-model"
FORMAT_VERSION = 2
METADATA_KEY = "__fastrbm__"

# class name in the file -> "module:attribute"; adding an estimator type to
# model files is one entry here and its state table in STATE_SCHEMA
MODEL_CLASSES = {
    "BernoulliRBM": "fastrbm.rbm:BernoulliRBM",
    "GaussianBernoulliRBM": "fastrbm.gaussian:GaussianBernoulliRBM",
    "CategoricalRBM": "fastrbm.categorical:CategoricalRBM",
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

# limits of the random-number counters: the engines count updates and
# sampling calls in 32 bits
_MAX_COUNT = 2**32 - 1


# ------------------------------------------------------------- state schema
# Checks of one decoded value: each returns None when the value is good, else
# what was expected (one phrase, reported with the file and the field).
def _int_in(low, high):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return f"expected an integer in [{low}, {high}], got {value!r}"
    check.__doc__ = f"an integer in [{low}, {high}]"
    return check


def _float_array(ndim):
    def check(value):
        if not isinstance(value, np.ndarray) or value.ndim != ndim or value.dtype.kind != "f":
            return (f"expected a {ndim}-D float array, got "
                    f"{getattr(value, 'shape', type(value).__name__)!r}")
    check.__doc__ = f"a {ndim}-D float array"
    return check


def _uint32(n):
    def check(value):
        if not isinstance(value, np.ndarray) or value.dtype != np.uint32 or value.shape != (n,):
            return f"expected a uint32 array of shape ({n},)"
    check.__doc__ = f"a uint32 array of shape ({n},)"
    return check


def _or_none(inner):
    def check(value):
        return None if value is None else inner(value)
    check.__doc__ = f"None or {inner.__doc__}"
    return check


def _velocity(value):
    """None or a tuple of three float arrays (weights, visible, hidden biases)"""
    if value is not None and (not isinstance(value, tuple) or len(value) != 3 or not all(
            isinstance(v, np.ndarray) and v.dtype.kind == "f" for v in value)):
        return "expected None or a tuple of three float arrays"


def _offsets(value):
    """None or a tuple of two 1-D float arrays (visible, hidden offsets)"""
    if value is not None and (not isinstance(value, tuple) or len(value) != 2 or not all(
            isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.ndim == 1
            for v in value)):
        return "expected None or a tuple of two 1-D float arrays"


def _float_arrays(value):
    """a non-empty list of float arrays"""
    if not isinstance(value, list) or not value or not all(
            isinstance(v, np.ndarray) and v.dtype.kind == "f" for v in value):
        return "expected a non-empty list of float arrays"


def _labels(value):
    """a 1-D array of numbers or strings"""
    if not isinstance(value, np.ndarray) or value.ndim != 1 or value.dtype.kind not in "biufO":
        return "expected a 1-D array of class labels"


def _strings(value):
    """a 1-D array of strings"""
    if (not isinstance(value, np.ndarray) or value.ndim != 1 or value.dtype != object
            or not all(isinstance(v, str) for v in value)):
        return "expected a 1-D array of strings"


def _json_list(value):
    """a list (of numbers, or of dicts or lists of them)"""
    if not isinstance(value, list):
        return f"expected a list, got {type(value).__name__}"


def _text_or_none(value):
    """None or a string"""
    if value is not None and not isinstance(value, str):
        return f"expected None or a string, got {type(value).__name__}"


def _number_or_none(value):
    """None or a number"""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"expected None or a number, got {type(value).__name__}"


def _model_list(value):
    """a non-empty list of RBMs"""
    if not isinstance(value, list) or not value or not all(_is_model(r) for r in value):
        return "expected a non-empty list of RBMs"


def _dbn_or_none(value):
    """None or a DBN"""
    if value is not None and not (_is_model(value) and type(value).__name__ == "DBN"):
        return f"expected None or a DBN, got {type(value).__name__}"


class Field(NamedTuple):
    """One entry of a model file's state: what it is and how it is checked.

    Attributes
    ----------
    key : str
        Its name in the file (``state`` of the metadata); fixed by the format.
    attr : str
        The estimator attribute it is read from and written to; the only
        place that names it, so renaming the attribute changes this alone.
    kind : str
        ``"array"``, ``"scalar"``, ``"arrays"`` (a list or tuple of arrays),
        ``"estimator"`` (nested estimators) or ``"json"`` (lists and dicts of
        numbers and strings).
    required : bool
        Whether a fitted model's file must hold it (a file with no state at
        all is an unfitted model).
    check : callable
        The load-time check of the decoded value: returns None, or what was
        expected.  Its docstring is the check in words.
    """

    key: str
    attr: str
    kind: str
    required: bool
    check: Callable


_COUNT = _int_in(0, _MAX_COUNT)
_N_FEATURES = Field("n_features_in_", "n_features_in_", "scalar", True, _int_in(1, 2**31 - 1))
_FEATURE_NAMES = Field("feature_names_in_", "feature_names_in_", "array", False, _strings)
_SEED_WORDS = Field("seed_words", "_seed_words", "array", False, _uint32(4))
_SAMPLE_CALLS = Field("sample_calls", "_sample_calls", "scalar", False, _COUNT)
_STOP_REASON = Field("stop_reason_", "stop_reason_", "scalar", False, _text_or_none)

_RBM_STATE = (
    _N_FEATURES, _FEATURE_NAMES,
    Field("components_", "components_", "array", True, _float_array(2)),
    Field("intercept_hidden_", "intercept_hidden_", "array", True, _float_array(1)),
    Field("intercept_visible_", "intercept_visible_", "array", True, _float_array(1)),
    # the base-rate model of AIS (evaluation.log_partition_ais)
    Field("visible_means", "_visible_means", "array", False, _float_array(1)),
    # what partial_fit continues from: chains, momentum buffers, the
    # sparsity target's running activity, and the random-number state
    Field("h_samples_", "h_samples_", "array", False, _or_none(_float_array(2))),
    Field("velocity", "_velocity", "arrays", False, _velocity),
    Field("hidden_activity", "_hidden_activity", "array", False, _or_none(_float_array(1))),
    # centered=True: the offsets; method='pt': the hotter replicas' hidden states
    Field("centering_offsets", "_offsets", "arrays", False, _offsets),
    Field("tempering_chains", "_tempering_chains", "array", False, _or_none(_float_array(3))),
    Field("swap_acceptance_", "swap_acceptance_", "array", False, _or_none(_float_array(1))),
    Field("n_updates_", "n_updates_", "scalar", False, _COUNT),
    Field("n_epochs_", "n_epochs_", "scalar", False, _COUNT),
    _SEED_WORDS,
    Field("key", "_key", "array", False, _uint32(2)),
    _SAMPLE_CALLS,
    Field("history_", "history_", "json", False, _json_list),
    _STOP_REASON,
    # fit(checkpoints=...): the parameters along the training trajectory
    Field("checkpoint_updates", "checkpoint_updates_", "json", False, _json_list),
    Field("checkpoint_components", "checkpoint_components_", "arrays", False, _float_arrays),
    Field("checkpoint_intercept_visible", "checkpoint_intercept_visible_", "arrays", False,
          _float_arrays),
    Field("checkpoint_intercept_hidden", "checkpoint_intercept_hidden_", "arrays", False,
          _float_arrays),
)

# estimator class name -> the fitted state its model file holds, by file key
STATE_SCHEMA = {
    "BernoulliRBM": _RBM_STATE,
    "GaussianBernoulliRBM": _RBM_STATE + (
        Field("mean_", "mean_", "array", False, _float_array(1)),
        Field("scale_", "scale_", "array", False, _float_array(1)),
        # log-variances of the visible units (public as sigma_)
        Field("log_variance", "_log_var", "array", False, _or_none(_float_array(1))),
        Field("checkpoint_log_variances", "checkpoint_log_var_", "arrays", False,
              _float_arrays),
    ),
    # categories per site and sites: components_ has n_sites_ * n_categories_ columns
    "CategoricalRBM": _RBM_STATE + (
        Field("n_categories_", "n_categories_", "scalar", True, _int_in(2, 2**16)),
        Field("n_sites_", "n_sites_", "scalar", True, _int_in(1, 2**31 - 1)),
    ),
    "DBN": (
        _N_FEATURES, _FEATURE_NAMES,
        Field("rbms_", "rbms_", "estimator", True, _model_list),
        _SEED_WORDS, _SAMPLE_CALLS,
        Field("history_", "history_", "json", False, _json_list),
        _STOP_REASON,
    ),
    "DBNClassifier": (
        _N_FEATURES, _FEATURE_NAMES,
        Field("classes_", "classes_", "array", True, _labels),
        Field("coefs_", "coefs_", "arrays", True, _float_arrays),
        Field("intercepts_", "intercepts_", "arrays", True, _float_arrays),
        Field("dbn_", "dbn_", "estimator", False, _dbn_or_none),
        Field("input_mean_", "input_mean_", "array", False, _or_none(_float_array(1))),
        Field("input_scale_", "input_scale_", "array", False, _or_none(_float_array(1))),
        _SEED_WORDS,
        Field("n_updates_", "n_updates_", "scalar", False, _COUNT),
        Field("n_iter_", "n_iter_", "scalar", False, _COUNT),
        Field("pretrain_seconds_", "pretrain_seconds_", "scalar", False, _number_or_none),
        Field("best_validation_score_", "best_validation_score_", "scalar", False,
              _number_or_none),
        Field("history_", "history_", "json", False, _json_list),
        Field("loss_curve_", "loss_curve_", "json", False, _json_list),
        _STOP_REASON,
    ),
}

# Format 1 stored every instance attribute that was not a constructor
# parameter, under its attribute name as of fastrbm 0.1 (commit 0e1971b).
# Those names are frozen here, whatever the attributes are called today:
# v1 name -> schema key.  A v1 name that is not here is the same as its key.
V1_KEYS = {
    "_velocity": "velocity",
    "_hidden_activity": "hidden_activity",
    "_visible_means": "visible_means",
    "_seed_words": "seed_words",
    "_key": "key",
    "_sample_calls": "sample_calls",
    "_log_var": "log_variance",
}

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
        if is_cupy_array(value):
            # a GPU model's arrays are stored as host copies (it loads as a
            # CPU model, as after pickling; to_cupy moves it back)
            value = to_host(value)
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
        attributes = vars(est)
        fields = [f for f in STATE_SCHEMA[name] if f.attr in attributes]
        present = {f.key for f in fields}
        missing = [f.key for f in STATE_SCHEMA[name] if f.required and f.key not in present]
        if present and missing:
            raise ValueError(f"cannot save {where}: it has fitted state but no {missing[0]} "
                             f"(fit it, or assign {missing[0]} too)")
        return {
            "class": name,
            "params": {k: self.encode(v, f"{where}.{k}") for k, v in params.items()},
            "fitted": sorted(f.attr for f in fields
                             if f.attr.endswith("_") and not f.attr.startswith("_")),
            "state": {f.key: self.encode(attributes[f.attr], f"{where}.{f.attr}")
                      for f in fields},
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


def _decode(value, arrays, where, depth=0, version=FORMAT_VERSION):
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
        items = [_decode(v, arrays, f"{where}[{i}]", depth + 1, version)
                 for i, v in enumerate(inner)]
        return items if tag == "__list__" else tuple(items)
    if tag == "__dict__":
        if not isinstance(inner, dict):
            raise _CorruptField(where, "__dict__ must hold a JSON object")
        return {k: _decode(v, arrays, f"{where}[{k!r}]", depth + 1, version)
                for k, v in inner.items()}
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
        return _build(inner, arrays, where, depth + 1, version)
    raise _CorruptField(where, f"unknown tag {tag!r}")


def _check_state(params, state, where, names):
    """Load-time consistency of the fields with each other (``state`` by
    schema key, each field already checked on its own; ``names``: schema key
    -> its name in the file, for the messages)."""
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
        width = D
        if "n_categories_" in state:
            # categorical units: D = sites x categories; X has a column per
            # site (codes) or per unit (one-hot)
            q, sites = state["n_categories_"], state.get("n_sites_")
            if sites is None or sites * q != D:
                raise _CorruptField(f"{where}.n_sites_", f"{sites!r} sites of {q} categories "
                                                         f"disagree with components_ {W.shape}")
            width = D if params.get("input") == "one-hot" else sites
        if state.get("n_features_in_") != width:
            raise _CorruptField(f"{where}.n_features_in_",
                                f"{state.get('n_features_in_')!r} disagrees with "
                                f"components_ {W.shape}")
        chains = state.get("h_samples_")
        if chains is not None and (not isinstance(chains, np.ndarray) or chains.ndim != 2
                                   or chains.shape[1] != H):
            raise _CorruptField(f"{where}.h_samples_", f"expected {H} columns to match "
                                                       f"components_ {W.shape}")
        # per-unit state (each already a float array or None by its own check)
        per_unit = {"hidden_activity": (H,), "visible_means": (D,), "mean_": (D,),
                    "scale_": (D,), "log_variance": (D,)}
        for name, shape in per_unit.items():
            value = state.get(name)
            if value is not None and value.shape != shape:
                raise _CorruptField(f"{where}.{names[name]}", f"expected shape {shape} to "
                                                              f"match components_ {W.shape}, "
                                                              f"got {value.shape}")
        velocity = state.get("velocity")
        if velocity is not None and tuple(v.shape for v in velocity) != (W.shape, (D,), (H,)):
            raise _CorruptField(f"{where}.{names['velocity']}",
                                f"expected shapes {W.shape}, ({D},), ({H},) to match "
                                f"components_")
    if "rbms_" in state:
        rbms = state["rbms_"]
        sizes = params.get("hidden_layer_sizes")
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


def _build(spec, arrays, where="model", depth=0, version=FORMAT_VERSION):
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
    params = {k: _decode(v, arrays, f"{where}.params.{k}", depth + 1, version)
              for k, v in spec["params"].items()}
    accepted = set(cls().get_params(deep=False))
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise _CorruptField(f"{where}.params", f"{spec['class']} has no parameter "
                                               f"{unknown[0]!r}")
    schema = {f.key: f for f in STATE_SCHEMA[spec["class"]]}
    state, names = {}, {}
    for name, value in spec["state"].items():
        # format 1 named the state by attribute names, frozen in V1_KEYS
        key = V1_KEYS.get(name, name) if version == 1 else name
        if key not in schema or key in state:
            raise _CorruptField(f"{where}.state", f"refusing {name!r}: not part of the "
                                                  f"{spec['class']} state in format {version}")
        names[key] = name
        state[key] = _decode(value, arrays, f"{where}.{name}", depth + 1, version)
        problem = schema[key].check(state[key])
        if problem:
            raise _CorruptField(f"{where}.{name}", problem)
    missing = [key for key, f in schema.items() if f.required and key not in state]
    if state and missing:
        raise _CorruptField(f"{where}.state", f"the fitted state has no {missing[0]!r}, "
                                              f"which a fitted {spec['class']} needs")
    _check_state(params, state, where, names)
    est = cls(**params)
    for key, value in state.items():
        setattr(est, schema[key].attr, value)
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
    ValueError
        If the model has part of its fitted state but not all that
        ``STATE_SCHEMA`` requires (e.g. an assigned ``components_`` without
        ``n_features_in_``): such a file could not be loaded.

    Notes
    -----
    The file is format 2: the parameters and the fitted state that
    ``STATE_SCHEMA`` lists for the model's class, nothing else (see this
    module's docstring for what is and is not kept).  Models on a GPU
    (CuPy arrays) are saved from host copies and load as CPU models
    (``model.to_cupy()`` moves a loaded model back).
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
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise ValueError(f"{path}: corrupt fastrbm model file: format_version "
                                 f"{version!r} is not a version number")
            if version > FORMAT_VERSION:
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
        The estimator with its parameters and the fitted state of its
        ``STATE_SCHEMA`` entry (weights, persistent chains, momentum buffers,
        random-number counters, history), so that ``transform``, ``sample`` and further
        ``partial_fit`` calls give the same results as the saved model.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not a fastrbm model file, is corrupt (the message names the
        file and the field), comes from a newer format version, names a class
        this version lacks or a function outside ``SCHEDULES``, or its state
        has a key outside the class's schema or lacks a required one.

    Notes
    -----
    What loading may and may not do is described in this module's docstring:
    no code runs, only named arrays are read, sizes are checked first.
    Files of format 1 load through the mapping ``V1_KEYS``.
    """
    path = _model_path(path)
    meta, arrays = _open(path)
    try:
        return _build(meta, arrays, version=meta["format_version"])
    except _CorruptField as exc:
        raise ValueError(f"{path}: corrupt fastrbm model file: {exc}") from None
    except (KeyError, TypeError, AttributeError, IndexError, OverflowError,
            RecursionError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: corrupt fastrbm model file ({message})") from None
