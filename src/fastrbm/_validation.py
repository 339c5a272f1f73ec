"""Input rules (DESIGN.md): what X may be, and the errors for what it may not.

- float32 / float64 in [0, 1] are used as they are (no copy, any memory order,
  read-only allowed);
- uint8 means intensity / 255 and bool means 0/1, converted batch by batch by
  the engine, never as a whole;
- SciPy CSR with such data is used as it is; other sparse formats are
  converted to CSR;
- other real dtypes (int64, float16, object arrays of numbers, ...) are
  converted to the model's float dtype (a copy) and then checked;
- values outside [0, 1] raise unless the estimator has out_of_range='clip'
  (then the engines clamp them while reading: no copy);
- NaN / inf, complex, non-numeric, empty, wrong ndim
  and a wrong feature count raise ValueError or TypeError saying what and where;
- CuPy arrays (dense, or cupyx CSR) follow the same rules, checked on the GPU
  by the GPU engine's kernels.
"""
import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import validate_data

from . import _cupy, _gibbs
from ._backend import is_cupy_array

NATIVE_DTYPES = (np.float32, np.float64, np.uint8, np.bool_)


def clips_out_of_range(out_of_range):
    """Whether an ``out_of_range`` setting clamps values outside [0, 1]
    ('clip') or rejects them ('raise'); anything else is a ValueError."""
    if out_of_range not in ("raise", "clip"):
        raise ValueError(f"out_of_range must be 'raise' or 'clip', got {out_of_range!r}")
    return out_of_range == "clip"


def _first_invalid(X, clip):
    return _gibbs.find_invalid(_gibbs.DataSource(X, clip))


def model_dtype_for(X, dtype):
    """The model's float dtype: ``dtype`` if given, else float64 only for float64 input."""
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32, float64 or None, got {dtype}")
        return dtype
    return np.dtype(np.float64) if X.dtype == np.float64 else np.dtype(np.float32)


def check_X(estimator, X, *, reset, dtype=None, clip=False, name="X"):
    """Validate X for ``estimator`` (feature count, finiteness, range).

    With ``clip`` values outside [0, 1] are allowed (the engines clamp them as
    they read them); NaN and infinity are still errors.

    Returns X as a NumPy array or SciPy CSR matrix whose dtype the engine
    reads directly.  ``dtype`` is the model's float dtype, used only for
    inputs that must be converted anyway.
    """
    if is_cupy_array(X):
        return _check_device_X(estimator, X, reset=reset, dtype=dtype, clip=clip, name=name)
    if isinstance(X, np.ndarray) and X.dtype.kind == "c" or (
        sp.issparse(X) and X.dtype.kind == "c"
    ):
        raise ValueError(f"Complex data not supported: {name} has dtype {X.dtype}.")
    if isinstance(X, np.ndarray) and X.dtype.kind in "USV":
        raise TypeError(
            f"{name} must be numeric; got an array of dtype {X.dtype} "
            "(strings or raw bytes)."
        )
    X = validate_data(
        estimator, X, reset=reset, accept_sparse="csr", dtype=None, order=None,
        copy=False, ensure_min_samples=1, ensure_min_features=1,
        ensure_all_finite=True,
    )
    if X.dtype == object:
        # numbers stored as objects: convert like scikit-learn (TypeError otherwise)
        X = X.astype(np.float64)
    if X.dtype not in NATIVE_DTYPES:
        if X.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got dtype {X.dtype}.")
        X = X.astype(dtype or np.float64)
    if sp.issparse(X) and not X.has_canonical_format:
        # duplicate entries would be overwritten, not summed, by the row gather;
        # canonicalise a copy, never the caller's matrix
        X = X.copy()
        X.sum_duplicates()
    _raise_invalid(_first_invalid(X, clip), X, clip, name)
    return X


def _raise_invalid(bad, X, clip, name):
    """The error for ``find_invalid``'s (row, col, value), if there is one."""
    if bad is not None:
        row, col, value = bad
        if value is None:
            raise ValueError(f"{name} is a malformed CSR matrix: row {row} has column "
                             f"index {col} outside [0, {X.shape[1]}).")
        if clip:
            raise ValueError(f"Input {name} contains NaN or infinity ({value!r}) at row "
                             f"{row}, column {col}.")
        raise ValueError(
            f"{name} must contain values in [0, 1] (or be uint8 intensities 0-255, or "
            f"bool); found {value!r} at row {row}, column {col}.  Scale the data (e.g. "
            f"MinMaxScaler) or pass out_of_range='clip' to clamp it."
        )


def _check_device_X(estimator, X, *, reset, dtype, clip, name):
    """check_X for CuPy input: the same rules, checked on the GPU."""
    device = _cupy.device()
    if device.is_sparse(X):
        if X.format != "csr":
            X = X.tocsr()
        if not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
    elif X.ndim != 2:
        raise ValueError(f"Expected a 2D array for {name}, got a {X.ndim}D CuPy array of "
                         f"shape {X.shape}; reshape it, e.g. X.reshape(-1, 1) for a "
                         f"single feature or X.reshape(1, -1) for a single sample.")
    n_samples, n_features = X.shape
    if n_samples < 1 or n_features < 1:
        raise ValueError(f"Found array with {n_samples} sample(s) and {n_features} "
                         f"feature(s) (shape={X.shape}) while a minimum of 1 of each is "
                         f"required.")
    kind = np.dtype(X.dtype).kind
    if kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {X.dtype}.")
    if np.dtype(X.dtype) not in NATIVE_DTYPES:
        if kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got dtype {X.dtype}.")
        X = X.astype(dtype or np.float64)
    if reset:
        estimator.n_features_in_ = n_features
        estimator.__dict__.pop("feature_names_in_", None)
    elif n_features != estimator.n_features_in_:
        raise ValueError(f"{name} has {n_features} features, but {type(estimator).__name__} "
                         f"is expecting {estimator.n_features_in_} features as input.")
    _raise_invalid(_cupy.find_invalid(X, clip), X, clip, name)
    return X
