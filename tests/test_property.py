"""Property-based tests of the public API (issue 21): whatever the input
(shape, dtype, NaN / inf / huge values), the hyperparameters (huge or
negative integers, wrong types), the method arguments or the parameters
assigned by hand, every call either works or raises ValueError / TypeError:
never a crash, never another exception type.

Deterministic (``derandomize=True``, no example database) and bounded: the
example counts are set per test so that the file runs in about a minute on
two busy cores.  Values that are valid but ask for huge work or memory (an
``n_iter`` or ``n_components`` of 2**31 - 1) are left out on purpose: they are
honest requests, not malformed input; values beyond the documented limits
(2**31, 10**30, 2**23 Gibbs steps) are drawn and must raise ValueError.
"""
import copy
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastrbm import DBN, BernoulliRBM, DBNClassifier, GaussianBernoulliRBM, evaluation

ACCEPTED = (ValueError, TypeError)
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def examples(n):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def works_or_rejects(call):
    """Run call(); a ValueError or TypeError is a clean rejection, anything
    else propagates and fails the test.  Returns the result or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call()
    except ACCEPTED:
        return None


# ----------------------------------------------------------------- strategies
WEIRD_NUMBERS = [0, 1, 2, -1, -2, 2**23, 2**31, 2**63, 10**30, -10**30, 0.0, 0.5, 1.5, -0.5,
                 1e308, float("nan"), float("inf"), -float("inf"), True, False, None, "a", "",
                 [1], (2,), {}, np.int64(2), np.float32(0.25), np.uint64(2**64 - 1), 1j]

weird = st.sampled_from(WEIRD_NUMBERS)

DTYPES = [np.float32, np.float64, np.uint8, np.bool_, np.int64, np.int8, np.float16,
          np.complex64, np.uint64]


@st.composite
def arrays(draw, max_rows=6, max_cols=6, cols=None):
    """2-D (sometimes 1-D or 3-D) arrays of any dtype, with NaN, inf and huge
    values among the elements; sometimes non-contiguous, read-only or CSR."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    ndim = draw(st.sampled_from([2, 2, 2, 2, 1, 3]))
    if ndim == 2:
        shape = (draw(st.integers(0, max_rows)),
                 cols if cols is not None and draw(st.booleans())
                 else draw(st.integers(0, max_cols)))
    else:
        shape = tuple(draw(st.integers(0, 4)) for _ in range(ndim))
    if dtype.kind == "f":
        elements = st.one_of(st.sampled_from([0.0, 1.0, 0.5]),
                             st.floats(allow_nan=True, allow_infinity=True,
                                       width=8 * min(dtype.itemsize, 8)))
    elif dtype.kind == "c":
        elements = st.complex_numbers(allow_nan=True, allow_infinity=True, width=64)
    else:
        elements = None
    X = draw(hnp.arrays(dtype, shape, elements=elements))
    layout = draw(st.sampled_from(["plain", "plain", "fortran", "read_only", "csr"]))
    if layout == "fortran":
        X = np.asfortranarray(X)
    elif layout == "read_only":
        X.setflags(write=False)
    elif layout == "csr" and X.ndim == 2 and dtype.kind != "c" and dtype != np.float16:
        X = sp.csr_matrix(X)
    return X


def binary(n=20, d=6, seed=0):
    return (np.random.default_rng(seed).random((n, d)) < 0.4).astype(np.float32)


@pytest.fixture(scope="module")
def fitted():
    X = binary()
    y = np.arange(len(X)) % 2
    real = np.random.default_rng(1).normal(size=X.shape)
    return {
        "rbm": BernoulliRBM(n_components=3, n_iter=1, batch_size=5, random_state=0).fit(X),
        "gauss": GaussianBernoulliRBM(n_components=3, n_iter=1, batch_size=5, sigma="learn",
                                      random_state=0).fit(real),
        "dbn": DBN((3, 2), rbm_params={"n_iter": 1}, random_state=0).fit(X),
        "clf": DBNClassifier((3,), max_iter=1, rbm_params={"n_iter": 1},
                             random_state=0).fit(X, y),
    }


# ------------------------------------------------------------- input data
@examples(200)
@given(X=arrays(cols=6), which=st.sampled_from(["rbm", "gauss", "dbn", "clf"]))
def test_methods_on_any_input(fitted, X, which):
    model = fitted[which]
    if which == "clf":
        calls = [lambda: model.predict(X), lambda: model.predict_proba(X),
                 lambda: model.score(X, np.zeros(X.shape[0] if X.ndim else 0, int))]
    elif which == "dbn":
        calls = [lambda: model.transform(X)]
    else:
        calls = [lambda: model.transform(X), lambda: model.gibbs(X),
                 lambda: model.free_energy(X), lambda: model.score_samples(X),
                 lambda: model.reconstruct(X),
                 lambda: evaluation.log_likelihood(model, X, log_z=0.0)]
    for call in calls:
        out = works_or_rejects(call)
        if out is not None and hasattr(out, "shape"):
            assert out.shape[0] == X.shape[0]


@examples(200)
@given(X=arrays(), which=st.sampled_from(["rbm", "gauss", "dbn", "clf"]),
       y_kind=st.sampled_from(["ints", "strings", "short", "one_class"]))
def test_fit_on_any_input(X, which, y_kind):
    n = X.shape[0] if X.ndim else 0
    y = {"ints": np.arange(n) % 2, "strings": np.array(["a", "b"] * n)[:n],
         "short": np.arange(max(n - 1, 0)) % 2, "one_class": np.zeros(n, int)}[y_kind]
    if which == "rbm":
        model = BernoulliRBM(n_components=2, n_iter=1, batch_size=3, random_state=0)
        fit = lambda: model.fit(X)  # noqa: E731
    elif which == "gauss":
        model = GaussianBernoulliRBM(n_components=2, n_iter=1, batch_size=3, random_state=0)
        fit = lambda: model.fit(X)  # noqa: E731
    elif which == "dbn":
        model = DBN((2,), rbm_params={"n_iter": 1}, random_state=0)
        fit = lambda: model.fit(X)  # noqa: E731
    else:
        model = DBNClassifier((2,), max_iter=1, rbm_params={"n_iter": 1}, random_state=0)
        fit = lambda: model.fit(X, y)  # noqa: E731
    if works_or_rejects(fit) is not None and which != "clf":
        works_or_rejects(lambda: model.transform(X))


# ------------------------------------------------------------ hyperparameters
RBM_PARAMS = ["n_components", "learning_rate", "batch_size", "n_iter", "k", "method",
              "momentum", "weight_decay", "l1", "sparsity_target", "sparsity_cost", "n_jobs",
              "dtype", "out_of_range", "validation_fraction", "early_stopping", "patience",
              "tol", "ais_every", "random_state"]
EXTRA = {"method": ["cd", "pcd"], "dtype": [np.float32, np.float64, "float32", np.int32],
         "out_of_range": ["clip", "raise"], "early_stopping": ["reconstruction_error",
                                                             "log_likelihood"]}
# valid but expensive: capped so that an accepted parameter set runs in milliseconds
SMALL = {"n_components": 3, "n_iter": 2, "batch_size": 50, "k": 3, "patience": 5,
         "ais_every": 1}


def small_enough(params):
    for name, cap in SMALL.items():
        value = params.get(name)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) \
                and cap < value < 2**31:
            return False
    return True


@st.composite
def param_sets(draw, names, extra):
    params = {}
    for name in draw(st.lists(st.sampled_from(names), max_size=4, unique=True)):
        params[name] = draw(st.sampled_from(WEIRD_NUMBERS + extra.get(name, [])))
    return params


@examples(300)
@given(params=param_sets(RBM_PARAMS, EXTRA).filter(small_enough),
       gaussian=st.booleans())
def test_rbm_hyperparameters(params, gaussian):
    cls = GaussianBernoulliRBM if gaussian else BernoulliRBM
    base = {"n_components": 2, "n_iter": 1, "batch_size": 5, "random_state": 0}
    # an unknown argument (out_of_range for the Gaussian model) is a TypeError
    model = works_or_rejects(lambda: cls(**{**base, **params}))
    X = binary()
    if model is not None and works_or_rejects(lambda: model.fit(X)) is not None:
        works_or_rejects(lambda: model.partial_fit(X))
        assert model.transform(X).shape == (len(X), model.components_.shape[0])


@pytest.mark.parametrize("name", RBM_PARAMS)
def test_rbm_hyperparameter_sweep(name):
    # every weird value for every parameter, one at a time (hypothesis draws
    # combinations above, but may miss a given single value)
    X = binary()
    for value in WEIRD_NUMBERS + EXTRA.get(name, []):
        if not small_enough({name: value}):
            continue
        for cls in (BernoulliRBM, GaussianBernoulliRBM):
            base = {"n_components": 2, "n_iter": 1, "batch_size": 5, "random_state": 0}
            model = works_or_rejects(lambda: cls(**{**base, name: value}))
            if model is not None and works_or_rejects(lambda: model.fit(X)) is not None:
                assert model.transform(X).shape == (len(X), model.components_.shape[0])


CLF_PARAMS = ["hidden_layer_sizes", "batch_size", "max_iter", "learning_rate", "momentum",
              "weight_decay", "dropout", "n_jobs", "n_iter_no_change", "tol",
              "early_stopping", "validation_fraction", "pretrain", "rbm_params",
              "layer_input", "visible_units"]
CLF_EXTRA = {"hidden_layer_sizes": [(2, 2), (), (2**31,), (0,), [3]],
             "rbm_params": [{"n_iter": 1}, {"k": 2**31}, {"batch_size": 10**30}, {"bogus": 1},
                            [{"n_iter": 1}]],
             "layer_input": ["proba", "sample"], "visible_units": ["bernoulli", "gaussian"],
             "pretrain": [True, False], "early_stopping": [True]}


@examples(160)
@given(params=param_sets(CLF_PARAMS, CLF_EXTRA).filter(
    lambda p: small_enough({"n_iter": p.get("max_iter"), "batch_size": p.get("batch_size"),
                            "n_components": max(p.get("hidden_layer_sizes") or [0])
                            if isinstance(p.get("hidden_layer_sizes"), (tuple, list))
                            and all(isinstance(s, int) for s in p["hidden_layer_sizes"])
                            else None})),
       classifier=st.booleans())
def test_dbn_hyperparameters(params, classifier):
    X = binary()
    y = np.arange(len(X)) % 2
    base = {"hidden_layer_sizes": (2,), "rbm_params": {"n_iter": 1}, "random_state": 0}
    if classifier:
        model = DBNClassifier(**{**base, "max_iter": 1, **params})
        fit = lambda: model.fit(X, y)  # noqa: E731
    else:
        dbn_params = {k: v for k, v in params.items()
                      if k in ("hidden_layer_sizes", "n_jobs", "rbm_params", "layer_input",
                               "visible_units")}
        model = DBN(**{**base, **dbn_params})
        fit = lambda: model.fit(X)  # noqa: E731
    if works_or_rejects(fit) is not None:
        works_or_rejects(lambda: model.predict(X) if classifier else model.transform(X))


@pytest.mark.parametrize("name", CLF_PARAMS)
def test_dbn_classifier_hyperparameter_sweep(name):
    X = binary()
    y = np.arange(len(X)) % 2
    for value in WEIRD_NUMBERS + CLF_EXTRA.get(name, []):
        sizes = value if isinstance(value, (tuple, list)) else [value]
        if not small_enough({{"max_iter": "n_iter", "batch_size": "batch_size"}.get(name, "_"):
                             value}) or (name == "hidden_layer_sizes" and not all(
                                 small_enough({"n_components": s}) for s in sizes)):
            continue
        base = {"hidden_layer_sizes": (2,), "rbm_params": {"n_iter": 1}, "max_iter": 1,
                "pretrain": False, "random_state": 0}
        model = DBNClassifier(**{**base, name: value})
        if works_or_rejects(lambda: model.fit(X, y)) is not None:
            assert model.predict(X).shape == (len(X),)


# ---------------------------------------------------------- method arguments
@examples(300)
@given(a=weird, b=weird, which=st.sampled_from(["rbm", "gauss", "dbn"]),
       method=st.sampled_from(["gibbs", "sample", "ais", "inverse_transform"]))
def test_method_arguments(fitted, a, b, which, method):
    model = fitted[which]
    X = binary()
    if any(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
           and 1000 < v <= 2**32 for v in (a, b)):
        # within the limits, so valid: 2**23 chains, samples or temperatures
        # are honest requests for a long run or a large allocation
        return
    if method == "gibbs" and which != "dbn":
        works_or_rejects(lambda: model.gibbs(X, k=a))
    elif method == "sample":
        works_or_rejects(lambda: model.sample(a, n_steps=b))
    elif method == "ais" and which != "dbn":
        works_or_rejects(lambda: evaluation.log_partition_ais(model, n_chains=a, betas=b))
    elif method == "inverse_transform" and which == "gauss":
        works_or_rejects(lambda: model.inverse_transform(np.full((2, 3), a, dtype=object)))


# ------------------------------------------------ parameters assigned by hand
@st.composite
def parameter_arrays(draw):
    def one(max_ndim):
        ndim = draw(st.integers(0, max_ndim))
        shape = tuple(draw(st.integers(0, 7)) for _ in range(ndim))
        dtype = draw(st.sampled_from([np.float32, np.float64, np.int64, np.bool_,
                                      np.complex128, object]))
        if dtype is object:
            return np.full(shape, draw(st.sampled_from([None, "x", 1.0])), dtype=object)
        return draw(hnp.arrays(dtype, shape))
    return one(3), one(2), one(2)


@examples(300)
@given(params=parameter_arrays(), which=st.sampled_from(["rbm", "gauss"]),
       call=st.sampled_from(["transform", "gibbs", "partial_fit", "sample", "free_energy",
                             "ais", "exact", "log_likelihood", "pseudo_likelihood"]))
def test_assigned_parameters(fitted, params, which, call):
    X = binary(10, 6)
    model = copy.deepcopy(fitted[which])
    model.components_, model.intercept_visible_, model.intercept_hidden_ = params
    calls = {
        "transform": lambda: model.transform(X), "gibbs": lambda: model.gibbs(X),
        "partial_fit": lambda: model.partial_fit(X), "sample": lambda: model.sample(2),
        "free_energy": lambda: model.free_energy(X),
        "ais": lambda: evaluation.log_partition_ais(model, n_chains=3, betas=4),
        "exact": lambda: evaluation.log_partition_exact(model),
        "log_likelihood": lambda: evaluation.log_likelihood(model, X, log_z=0.0),
        "pseudo_likelihood": lambda: evaluation.pseudo_likelihood(model, X),
    }
    out = works_or_rejects(calls[call])
    if out is not None and call in ("transform", "gibbs"):
        # it worked only because the shapes were consistent with the data
        W = model.components_
        assert W.shape[1] == X.shape[1] and out.shape[0] == len(X)
