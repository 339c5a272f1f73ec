"""Input rules (docs/guide/units.md, docs/design.md): what X may be, and the errors for what it may not.

- float32 / float64 in [0, 1] are used as they are (no copy, any memory order,
  read-only allowed);
- uint8 means intensity / 255 and bool means 0/1, converted batch by batch by
  the engine, never as a whole;
- SciPy CSR with such data is used as it is; other sparse formats are
  converted to CSR;
- other real dtypes (int64, float16, object arrays of numbers, ...) are
  converted to the model's float dtype (a copy) and then checked;
- values within rounding of [0, 1] (``RANGE_TOLERANCE``) are accepted
  silently; values further out (a scaler fitted on other rows) are clamped
  by the engines while reading (no copy) with one ``OutOfRangeWarning`` per
  call that gives their count and range (out_of_range='clip', the default),
  or raise a ValueError (out_of_range='raise');
- NaN / inf, complex, non-numeric, empty, wrong ndim
  and a wrong feature count raise ValueError or TypeError saying what and where;
- CuPy arrays (dense, or cupyx CSR) follow the same rules, checked on the GPU
  by the GPU engine's kernels.
"""
import threading
import warnings
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import validate_data

from . import _cpu, _cupy
from ._backend import array_module, is_cupy_array, to_host

NATIVE_DTYPES = (np.float32, np.float64, np.uint8, np.bool_)

#: Values in [-RANGE_TOLERANCE, 1 + RANGE_TOLERANCE] count as [0, 1] rounded
#: (MinMaxScaler gives 1.0000000000000002); beyond it they warn or raise.
RANGE_TOLERANCE = 1e-6

# rows read at a time by the (rare) out-of-range summary: bounded temporaries
_SUMMARY_CHUNK_ELEMENTS = 1 << 20


class OutOfRangeWarning(UserWarning):
    """Input values outside [0, 1] were clamped to [0, 1] as they were read.

    Raised once per call (fit, transform, ...) with the count and range of
    the values beyond rounding.  ``out_of_range='raise'`` turns them into a
    ValueError; ``warnings.simplefilter('ignore', OutOfRangeWarning)``
    silences it.
    """


_quiet = threading.local()


@contextmanager
def range_warning_given():
    """Within: ``check_X`` gives no ``OutOfRangeWarning``, because the caller
    (a DBN handing X to its first layer) already gave this call's one."""
    before = getattr(_quiet, "on", False)
    _quiet.on = True
    try:
        yield
    finally:
        _quiet.on = before


def clips_out_of_range(out_of_range):
    """Whether an ``out_of_range`` setting clamps values outside [0, 1]
    ('clip') or rejects them ('raise'); anything else is a ValueError."""
    if out_of_range not in ("raise", "clip"):
        raise ValueError(f"out_of_range must be 'raise' or 'clip', got {out_of_range!r}")
    return out_of_range == "clip"


def _first_invalid(X, finite_only):
    """First NaN/inf (and, unless ``finite_only``, value outside [0, 1])."""
    return _cpu.find_invalid(_cpu.DataSource(X, finite_only))


def column_means(X, rows=None, *, clip=False):
    """Mean of each feature as the engines read it (uint8 / 255, clamped to
    [0, 1] when clipping), in chunks of rows: never a whole copy of X.

    Parameters
    ----------
    X : validated array or sparse matrix, on either device
    rows : sequence of int, optional
        Restrict the means to these rows (default all).
    clip : bool, default=False
        Clamp values to [0, 1] as the kernels read them.

    Returns
    -------
    ndarray of shape (n_features,)
        float64 means, on the host.
    """
    n_samples, n_features = X.shape
    xp = array_module(X)
    if rows is not None:
        n_samples = len(rows)
        rows = xp.asarray(rows)
    chunk = max(1, (1 << 16) // n_features)
    total = xp.zeros(n_features)
    for start in range(0, n_samples, chunk):
        part = X[start:start + chunk] if rows is None else X[rows[start:start + chunk]]
        part = part.toarray() if hasattr(part, "toarray") else xp.asarray(part)
        part = part / 255.0 if part.dtype == np.uint8 else part.astype(np.float64)
        if clip:
            xp.clip(part, 0, 1, out=part)
        total += part.sum(axis=0)
    return to_host(total / n_samples)


def model_dtype_for(X, dtype):
    """The model's float dtype: ``dtype`` if given, else float64 only for float64 input."""
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32, float64 or None, got {dtype}")
        return dtype
    return np.dtype(np.float64) if X.dtype == np.float64 else np.dtype(np.float32)


def check_X(estimator, X, *, reset, dtype=None, clip=False, finite_only=False, name="X"):
    """Validate X for ``estimator`` (feature count, finiteness, range).

    Values within ``RANGE_TOLERANCE`` of [0, 1] always pass.  With ``clip``
    values further outside [0, 1] pass too (the engines clamp them as they
    read them) with one ``OutOfRangeWarning``; without it they raise.  With
    ``finite_only`` any finite real passes (real-valued visible units).  NaN
    and infinity are always errors.

    Returns X as a NumPy array or SciPy CSR matrix whose dtype the engine
    reads directly.  ``dtype`` is the model's float dtype, used only for
    inputs that must be converted anyway.
    """
    if is_cupy_array(X):
        return _check_device_X(estimator, X, reset=reset, dtype=dtype, clip=clip,
                               finite_only=finite_only, name=name)
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
    _check_values(X, _first_invalid, clip=clip, finite_only=finite_only, name=name)
    return X


def _check_values(X, first_invalid, *, clip, finite_only, name):
    """The finiteness and range rules, given the engine's ``first_invalid(X,
    finite_only)`` scan (one pass, no temporaries, on X's device)."""
    if finite_only:
        _raise_invalid(first_invalid(X, True), X, name)
        return
    bad = first_invalid(X, False)
    if bad is None:
        return
    # the first value outside [0, 1] may hide a NaN further on: finiteness first
    _raise_invalid(first_invalid(X, True), X, name)
    count, low, high, first = _out_of_range_summary(X)
    if count == 0:
        return  # rounding only: the engines clamp it as they read
    row, col, value = first
    where = (f"{count} value{'s' if count != 1 else ''} of {name} outside [0, 1], from "
             f"{low:.6g} to {high:.6g} (the first, {value!r}, at row {row}, column {col})")
    if not clip:
        raise ValueError(
            f"{where}, and out_of_range='raise'.  Binary units read values in [0, 1] "
            f"(or uint8 intensities 0-255, or bool); pass out_of_range='clip' (the "
            f"default) to clamp them as they are read.")
    if getattr(_quiet, "on", False):
        return
    warnings.warn(
        f"{where} clamped to [0, 1] as read (out_of_range='clip').  A scaler fitted on "
        f"other rows does this; rescale the data, or pass out_of_range='raise' to make "
        f"it an error.", OutOfRangeWarning, stacklevel=4)


def _out_of_range_summary(X):
    """(count, min, max, (row, col, value) of the first) over the stored values
    beyond ``RANGE_TOLERANCE`` of [0, 1]; read in bounded chunks, never a whole
    copy.  Only called when a value outside [0, 1] was found."""
    csr = hasattr(X, "indptr")
    values = X.data if csr else X
    n_rows = values.shape[0]
    width = 1 if csr else max(1, X.shape[1])
    step = max(1, _SUMMARY_CHUNK_ELEMENTS // width)
    count, low, high, first = 0, np.inf, -np.inf, None
    for start in range(0, n_rows, step):
        part = values[start:start + step]
        beyond = (part < -RANGE_TOLERANCE) | (part > 1 + RANGE_TOLERANCE)
        n = int(beyond.sum())
        if n == 0:
            continue
        count += n
        clamped = part[beyond]
        low = min(low, float(clamped.min()))
        high = max(high, float(clamped.max()))
        if first is None:
            flat = int(beyond.ravel().argmax())
            if csr:
                position = start + flat
                indptr = np.asarray(X.indptr.get() if hasattr(X.indptr, "get") else X.indptr)
                row = int(np.searchsorted(indptr, position, side="right")) - 1
                col = int(X.indices[position])
                first = (row, col, float(values[position]))
            else:
                row, col = start + flat // width, flat % width
                first = (row, col, float(values[row, col]))
    return count, low, high, first


def _raise_invalid(bad, X, name):
    """The error for a finiteness scan's (row, col, value), if there is one."""
    if bad is not None:
        row, col, value = bad
        if value is None:
            raise ValueError(f"{name} is a malformed CSR matrix: row {row} has column "
                             f"index {col} outside [0, {X.shape[1]}).")
        raise ValueError(f"Input {name} contains NaN or infinity ({value!r}) at row "
                         f"{row}, column {col}.")


def check_device_shape(X, name="X"):
    """The shape rules of ``check_X`` for a CuPy X (dense, or sparse): 2-D
    and not empty, with scikit-learn's messages.  Returns the width."""
    if not _cupy.device().is_sparse(X) and X.ndim != 2:
        raise ValueError(f"Expected a 2D array for {name}, got a {X.ndim}D CuPy array of "
                         f"shape {X.shape}; reshape it, e.g. X.reshape(-1, 1) for a "
                         f"single feature or X.reshape(1, -1) for a single sample.")
    n_samples, n_features = X.shape
    if n_samples < 1 or n_features < 1:
        raise ValueError(f"Found array with {n_samples} sample(s) and {n_features} "
                         f"feature(s) (shape={X.shape}) while a minimum of 1 of each is "
                         f"required.")
    return n_features


def check_width(estimator, n_features, *, reset, name="X"):
    """``n_features_in_`` learnt (``reset``) or checked, as ``validate_data``
    does, with its message."""
    if reset:
        estimator.n_features_in_ = n_features
        estimator.__dict__.pop("feature_names_in_", None)
    elif n_features != estimator.n_features_in_:
        raise ValueError(f"{name} has {n_features} features, but {type(estimator).__name__} "
                         f"is expecting {estimator.n_features_in_} features as input.")


def _check_device_X(estimator, X, *, reset, dtype, clip, finite_only, name):
    """check_X for CuPy input: the same rules, checked on the GPU."""
    device = _cupy.device()
    if device.is_sparse(X):
        if X.format != "csr":
            X = X.tocsr()
        if not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
    n_features = check_device_shape(X, name)
    kind = np.dtype(X.dtype).kind
    if kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {X.dtype}.")
    if np.dtype(X.dtype) not in NATIVE_DTYPES:
        if kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got dtype {X.dtype}.")
        X = X.astype(dtype or np.float64)
    check_width(estimator, n_features, reset=reset, name=name)
    _check_values(X, _cupy.find_invalid, clip=clip, finite_only=finite_only, name=name)
    return X
