"""Input rules: bad input raises a ValueError/TypeError that says what and where;
accepted input is used as it is and never modified."""
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit

import fastrbm


def BernoulliRBM(**kwargs):
    """Small, fast, single-threaded models (results do not depend on n_jobs)."""
    kwargs = {"n_components": 4, "n_iter": 2, "random_state": 0, "n_jobs": 1, **kwargs}
    return fastrbm.BernoulliRBM(**kwargs)


def data(n=20, d=6, seed=0):
    return np.random.default_rng(seed).random((n, d))


@pytest.fixture(scope="module")
def fitted():
    return BernoulliRBM().fit(data())


def methods(model):
    """The methods that take X after fit."""
    return {
        "transform": model.transform,
        "score_samples": model.score_samples,
        "free_energy": model.free_energy,
        "gibbs": model.gibbs,
        "reconstruct": model.reconstruct,
        "partial_fit": model.partial_fit,
    }


# --------------------------------------------------------- non-finite values


@pytest.mark.parametrize("bad, match", [(np.nan, "NaN"), (np.inf, "infinity"),
                                        (-np.inf, "infinity")])
@pytest.mark.parametrize("kind", ["dense", "csr", "float32"])
def test_non_finite_rejected(bad, match, kind):
    X = data()
    X[3, 2] = bad
    if kind == "csr":
        X = sp.csr_matrix(X)
    elif kind == "float32":
        X = X.astype(np.float32)
    with pytest.raises(ValueError, match=match):
        BernoulliRBM().fit(X)
    with pytest.raises(ValueError, match=match):
        BernoulliRBM(out_of_range="clip").fit(X)  # clipping never hides NaN/inf


@pytest.mark.parametrize("name", ["transform", "score_samples", "free_energy", "gibbs",
                                  "partial_fit"])
def test_non_finite_rejected_after_fit(fitted, name):
    X = data()
    X[0, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        methods(fitted)[name](X)


# ------------------------------------------------------------- value range


def Strict(**kwargs):
    return BernoulliRBM(out_of_range="raise", **kwargs)


@pytest.mark.parametrize("value, row, col", [(1.5, 3, 2), (-0.25, 4, 1), (1.000002, 19, 5),
                                             (-2e-6, 0, 0)])
def test_out_of_range_names_value_row_column(value, row, col):
    X = data()
    X[row, col] = value
    X[row + 1:] = 2.0  # later rows are bad too: the first bad value is the one reported
    pattern = rf"{value!r}.*row {row}, column {col}"
    with pytest.raises(ValueError, match=pattern):
        Strict().fit(X)
    with pytest.raises(ValueError, match=pattern):
        Strict().fit(sp.csr_matrix(X))


@pytest.mark.parametrize("layout", ["fortran", "strided", "reversed"])
def test_out_of_range_position_in_views(layout):
    # the reported (row, column) are those of the array the caller passed,
    # whatever its memory layout
    base = data(20, 12)
    if layout == "fortran":
        X = np.asfortranarray(base)
    elif layout == "strided":
        X = base[:, ::2]
    else:
        X = base[::-1]
    X[7, 4] = 3.5
    with pytest.raises(ValueError, match=r"3\.5.*row 7, column 4"):
        Strict().fit(X)


def test_out_of_range_after_fit():
    strict = Strict().fit(data())
    X = data()
    X[2, 3] = 1.25
    for name in ("transform", "score_samples", "free_energy", "gibbs", "partial_fit"):
        with pytest.raises(ValueError, match=r"1\.25.*row 2, column 3"):
            methods(strict)[name](X)


def test_integer_input_range_checked():
    X = (data() > 0.5).astype(np.int64)
    Strict().fit(X)  # 0/1 integers are fine
    X[5, 1] = 2
    with pytest.raises(ValueError, match=r"2\.0.*row 5, column 1"):
        Strict().fit(X)


@pytest.mark.parametrize("mode", ["clip", "raise"])
@pytest.mark.parametrize("kind", ["dense", "csr", "float32"])
def test_rounding_accepted_silently(mode, kind):
    # MinMaxScaler gives 1.0000000000000002; within 1e-6 of [0, 1] is rounding
    X = data()
    X[0, 0], X[1, 1], X[2, 2] = 1.0000000000000002, -1e-300, 1 + 9e-7
    if kind == "csr":
        X = sp.csr_matrix(X)
    elif kind == "float32":
        X = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = BernoulliRBM(out_of_range=mode).fit(X)
        model.transform(X)
        model.score_samples(X)


def test_minmax_scaled_breast_cancer_accepted_silently():
    # the case of the issue: MinMaxScaler output holds 1.0000000000000002
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import MinMaxScaler

    X = MinMaxScaler().fit_transform(load_breast_cancer().data)
    assert X.max() > 1  # the rounding this test is about is really there
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BernoulliRBM(out_of_range="raise").fit(X).transform(X)


@pytest.mark.parametrize("kind", ["dense", "csr", "fortran"])
def test_clip_warns_once_with_count_and_range(kind):
    X = data()
    X[1, 1], X[2, 2], X[3, 3] = 1.7, -0.4, 2.5
    X[4, 4] = 1.0000000000000002  # rounding: not counted
    if kind == "csr":
        X = sp.csr_matrix(X)
    elif kind == "fortran":
        X = np.asfortranarray(X)
    model = BernoulliRBM()
    with pytest.warns(fastrbm.OutOfRangeWarning) as record:
        model.fit(X)
    assert len(record) == 1
    message = str(record[0].message)
    assert "3 values of X outside [0, 1], from -0.4 to 2.5" in message
    assert "row 1, column 1" in message
    for name in ("transform", "score_samples", "free_energy", "reconstruct"):
        with pytest.warns(fastrbm.OutOfRangeWarning) as record:
            methods(model)[name](X)
        assert len(record) == 1, name


@pytest.mark.parametrize("make", [
    lambda: fastrbm.DBN((4, 3), rbm_params={"n_iter": 1}, random_state=0),
    lambda: fastrbm.DBNClassifier((4,), max_iter=1, rbm_params={"n_iter": 1}, random_state=0),
])
def test_dbn_warns_once_per_call(make):
    X = data()
    X[1, 1] = 1.7
    y = np.arange(len(X)) % 2
    model = make()

    def range_warnings(record):
        return [w for w in record if issubclass(w.category, fastrbm.OutOfRangeWarning)]

    with pytest.warns(fastrbm.OutOfRangeWarning) as record:
        model.fit(X, y)
    assert len(range_warnings(record)) == 1
    method = model.transform if hasattr(model, "transform") else model.predict_proba
    with pytest.warns(fastrbm.OutOfRangeWarning) as record:
        method(X)
    assert len(range_warnings(record)) == 1


def test_test_rows_beyond_training_range_pipeline():
    # a scaler fitted on training rows maps unseen rows outside [0, 1]: the
    # default clamps them (as scikit-learn's BernoulliRBM accepts them)
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import MinMaxScaler

    X = load_digits().data
    scaler = MinMaxScaler().fit(X[:100])
    X_test = scaler.transform(X[100:200])
    assert X_test.max() > 1.5
    model = BernoulliRBM(n_components=8).fit(scaler.transform(X[:100]))
    with pytest.warns(fastrbm.OutOfRangeWarning):
        h = model.transform(X_test)
    np.testing.assert_array_equal(h, model.transform(np.clip(X_test, 0, 1)))


def test_clip_mode_reads_clamped_values():
    # with out_of_range='clip' every method sees np.clip(X, 0, 1), and the
    # caller's array keeps its values
    X = data()
    X[1, 1], X[2, 2], X[3, 3] = 1.7, -0.4, 1e6
    original = X.copy()
    model = BernoulliRBM(out_of_range="clip").fit(np.clip(X, 0, 1))
    for name in ("transform", "free_energy", "score_samples", "reconstruct"):
        got = methods(model)[name](X)
        assert np.array_equal(got, methods(model)[name](np.clip(X, 0, 1))), name
    W, c = model.components_, model.intercept_hidden_
    np.testing.assert_allclose(model.transform(X), expit(np.clip(X, 0, 1) @ W.T + c),
                               rtol=1e-12)
    assert np.array_equal(X, original)
    with pytest.raises(ValueError, match="out_of_range"):
        BernoulliRBM(out_of_range="wrap").fit(np.clip(X, 0, 1))


def test_clip_mode_fit_equals_fit_on_clipped_data():
    # training with out_of_range='clip' is training on np.clip(X, 0, 1):
    # same initial visible biases (logit of the clamped column means) and the
    # same parameters after training
    X = data()
    X[1, 1], X[2, 2], X[3, 3] = 1.7, -0.4, 1e6
    clipped = np.clip(X, 0, 1)
    init = BernoulliRBM(out_of_range="clip", n_iter=0).fit(X)
    init_clipped = BernoulliRBM(n_iter=0).fit(clipped)
    np.testing.assert_array_equal(init.intercept_visible_, init_clipped.intercept_visible_)
    model = BernoulliRBM(out_of_range="clip").fit(X)
    assert np.array_equal(model.components_, BernoulliRBM().fit(clipped).components_)


# ----------------------------------------------------------- shape and type


def test_wrong_ndim():
    with pytest.raises(ValueError, match="2D"):
        BernoulliRBM().fit(data()[0])
    with pytest.raises(ValueError, match="dim 3"):
        BernoulliRBM().fit(data()[None])
    with pytest.raises(ValueError):
        BernoulliRBM().fit(np.float64(0.5))


@pytest.mark.parametrize("name", ["transform", "score_samples", "free_energy", "gibbs",
                                  "partial_fit", "reconstruct"])
@pytest.mark.parametrize("n_features", [5, 7])
def test_wrong_feature_count(fitted, name, n_features):
    X = data(d=n_features)
    with pytest.raises(ValueError, match=rf"{n_features} features.*expecting 6 features"):
        methods(fitted)[name](X)
    with pytest.raises(ValueError, match=rf"{n_features} features.*expecting 6 features"):
        methods(fitted)[name](sp.csr_matrix(X))


@pytest.mark.parametrize("shape, match", [((0, 6), "0 sample"), ((6, 0), "0 feature")])
def test_empty(shape, match):
    with pytest.raises(ValueError, match=match):
        BernoulliRBM().fit(np.zeros(shape))
    with pytest.raises(ValueError, match=match):
        BernoulliRBM().fit(sp.csr_matrix(shape))


def test_empty_after_fit(fitted):
    with pytest.raises(ValueError, match="0 sample"):
        fitted.transform(np.zeros((0, 6)))


@pytest.mark.parametrize("make", [
    lambda X: X.astype(np.complex128),
    lambda X: X.astype(np.complex64),
    lambda X: sp.csr_matrix(X.astype(np.complex128)),
])
def test_complex_rejected(make):
    with pytest.raises(ValueError, match="Complex data not supported"):
        BernoulliRBM().fit(make(data()))


@pytest.mark.parametrize("X", [
    np.array([["a", "b"], ["c", "d"]]),
    np.array([[b"0", b"1"], [b"1", b"0"]]),
    np.array([["a", "b"], ["c", "d"]], dtype=object),
    np.array([[None, 0.5], [0.5, 0.5]], dtype=object),
    [["x", 0.5], [0.5, 0.5]],
], ids=["unicode", "bytes", "object-str", "object-None", "list-str"])
def test_non_numeric_rejected(X):
    with pytest.raises((TypeError, ValueError)):
        BernoulliRBM().fit(X)


def test_numeric_array_likes_accepted():
    X = data()
    expected = BernoulliRBM().fit(X).components_
    assert np.array_equal(BernoulliRBM().fit(X.tolist()).components_, expected)
    assert np.array_equal(BernoulliRBM().fit(X.astype(object)).components_, expected)
    for fmt in ("coo", "csc", "lil"):
        M = sp.csr_matrix(X).asformat(fmt)
        assert np.array_equal(BernoulliRBM().fit(M).components_, expected), fmt


# ---------------------------------------------------------- hyperparameters


@pytest.mark.parametrize("params, match", [
    (dict(n_components=0), "n_components"),
    (dict(n_components=2.5), "n_components"),
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=True), "batch_size"),
    (dict(k=0), "k must"),
    (dict(n_iter=-1), "n_iter"),
    (dict(method="x"), "method"),
    (dict(momentum=1.5), "momentum"),
    (dict(momentum=-0.1), "momentum"),
    (dict(learning_rate=-1), "learning_rate"),
    (dict(learning_rate=np.nan), "learning_rate"),
    (dict(weight_decay=-1e-3), "weight_decay"),
    (dict(l1=np.inf), "l1"),
    (dict(sparsity_target=1.5), "sparsity_target"),
    (dict(sparsity_cost=-1), "sparsity_cost"),
    (dict(n_jobs=0), "n_jobs"),
    (dict(dtype=np.int32), "dtype"),
    (dict(random_state="seed"), "random_state"),
])
def test_bad_hyperparameters_raise_at_fit(params, match):
    model = BernoulliRBM(**params)  # constructing never raises (scikit-learn rule)
    with pytest.raises(ValueError, match=match):
        model.fit(data())
    with pytest.raises(ValueError, match=match):
        BernoulliRBM(**params).partial_fit(data())


def test_not_fitted():
    from sklearn.exceptions import NotFittedError

    model = BernoulliRBM()
    for name in ("transform", "score_samples", "free_energy", "gibbs"):
        with pytest.raises(NotFittedError):
            methods(model)[name](data())


# -------------------------------------------------- accepted memory layouts


def _expected_transform(model, X):
    W, c = model.components_, model.intercept_hidden_
    return expit(np.asarray(X, dtype=np.float64) @ W.T + c)


@pytest.mark.parametrize("layout", ["readonly", "fortran", "strided", "reversed"])
def test_layouts_accepted(layout):
    base = data(30, 12)
    if layout == "readonly":
        X = base.copy()
        X.setflags(write=False)
    elif layout == "fortran":
        X = np.asfortranarray(base)
    elif layout == "strided":
        X = data(30, 24)[:, ::2]
    else:
        X = base[::-1]
    dense = np.ascontiguousarray(X)
    model = BernoulliRBM().fit(X)
    reference = BernoulliRBM().fit(dense)
    # to rounding, not bit for bit: the initial visible biases come from
    # NumPy's X.mean(axis=0), whose summation order follows the memory layout
    for attr in ("components_", "intercept_visible_", "intercept_hidden_"):
        np.testing.assert_allclose(getattr(model, attr), getattr(reference, attr),
                                   rtol=1e-12, atol=1e-15, err_msg=attr)
    # the same model reads every layout the same, bit for bit
    assert np.array_equal(model.transform(X), model.transform(dense))
    assert np.array_equal(model.free_energy(X), model.free_energy(dense))
    assert np.array_equal(model.score_samples(X), model.score_samples(dense))
    np.testing.assert_allclose(model.transform(X), _expected_transform(model, dense), rtol=1e-12)
    model.partial_fit(X)
    model.gibbs(X)


def test_readonly_sparse_accepted():
    X = sp.csr_matrix(data(30, 12) * (data(30, 12, seed=1) > 0.5))
    for arr in (X.data, X.indices, X.indptr):
        arr.setflags(write=False)
    model = BernoulliRBM().fit(X)
    np.testing.assert_allclose(model.transform(X), _expected_transform(model, X.toarray()),
                               rtol=1e-12)


# ------------------------------------------------- the caller's data is untouched


@pytest.mark.parametrize("kind", ["float64", "float32", "uint8", "bool", "csr", "csr_uint8"])
def test_input_never_modified(kind):
    base = data(40, 10)
    mask = data(40, 10, seed=1) > 0.5
    if kind == "float64":
        X = base
    elif kind == "float32":
        X = base.astype(np.float32)
    elif kind == "uint8":
        X = (base * 255).astype(np.uint8)
    elif kind == "bool":
        X = mask
    elif kind == "csr":
        X = sp.csr_matrix(base * mask)
    else:
        X = sp.csr_matrix((base * mask * 255).astype(np.uint8))
    snapshot = X.copy()
    model = BernoulliRBM(method="pcd", momentum=0.5, sparsity_cost=0.1, out_of_range="clip")
    model.fit(X)
    model.partial_fit(X)
    model.transform(X)
    model.score_samples(X)
    model.gibbs(X, k=2)
    model.reconstruct(X)
    if sp.issparse(X):
        for attr in ("data", "indices", "indptr"):
            assert np.array_equal(getattr(X, attr), getattr(snapshot, attr)), attr
            assert getattr(X, attr).dtype == getattr(snapshot, attr).dtype
    else:
        assert X.dtype == snapshot.dtype
        assert np.array_equal(X, snapshot)


def test_csr_with_duplicates_summed_and_caller_untouched():
    # scipy's meaning of duplicate entries is their sum; the model must see
    # the summed matrix while the caller's non-canonical matrix stays as it is
    data_ = np.array([0.25, 0.25, 0.5, 0.3, 0.3, 0.1])
    indices = np.array([1, 1, 3, 0, 2, 0])
    indptr = np.array([0, 3, 5, 6])
    X = sp.csr_matrix((data_, indices, indptr), shape=(3, 4))
    assert not X.has_canonical_format
    snap = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    dense = X.toarray()  # sums duplicates: row 0 = [0, 0.5, 0, 0.5]
    assert dense[0, 1] == 0.5
    model = BernoulliRBM(batch_size=2).fit(X)
    reference = BernoulliRBM(batch_size=2).fit(dense)
    assert np.array_equal(model.components_, reference.components_)
    assert np.array_equal(model.transform(X), reference.transform(dense))
    assert np.array_equal(model.free_energy(X), reference.free_energy(dense))
    assert not X.has_canonical_format
    for got, want in zip((X.data, X.indices, X.indptr), snap):
        assert np.array_equal(got, want)
    # duplicates summing past 1 are out of range
    Y = sp.csr_matrix((np.array([0.75, 0.75]), np.array([2, 2]), np.array([0, 2])),
                      shape=(1, 4))
    with pytest.raises(ValueError, match=r"1\.5.*row 0, column 2"):
        Strict().fit(Y)


def test_csr_unsorted_indices():
    X = sp.csr_matrix((np.array([0.5, 0.25, 1.0]), np.array([3, 0, 1]), np.array([0, 2, 3])),
                      shape=(2, 4))
    X.has_sorted_indices = False
    dense = X.toarray()
    model = BernoulliRBM(batch_size=2).fit(X)
    assert np.array_equal(model.components_, BernoulliRBM(batch_size=2).fit(dense).components_)


@pytest.mark.parametrize("kind", ["float64", "uint8", "fortran", "csr"])
def test_no_whole_copy_of_input(kind):
    # the data are read in place, batch by batch: peak traced memory during
    # fit + transform stays far below the size of X (NumPy reports its
    # allocations to tracemalloc)
    # (20000 x 200: the monitoring of 256 rows and the (n, 8) transform
    # output are small next to X)
    rng = np.random.default_rng(0)
    base = rng.random((20000, 200)) * (rng.random((20000, 200)) < 0.5)
    X = {"float64": base, "uint8": (base * 255).astype(np.uint8),
         "fortran": np.asfortranarray(base), "csr": sp.csr_matrix(base)}[kind]
    nbytes = X.data.nbytes if sp.issparse(X) else X.nbytes
    model = BernoulliRBM(n_components=8, n_iter=1, batch_size=100)
    tracemalloc.start()
    try:
        model.fit(X)
        model.transform(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * nbytes, (peak, nbytes)
