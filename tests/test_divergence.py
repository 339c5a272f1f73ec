"""Divergence: a fit whose parameters become NaN or infinite raises a
DivergenceError (a ValueError) that names the fix and leaves the last finite
parameters; a reconstruction error rising for several epochs warns; a NaN
step never passes the log-variance clamp (issue 21 D8, issue 14 item 5).

The diverging fits are the issue's reproducers: GaussianBernoulliRBM on
scikit-learn's digits (the estimator standardises them itself) with
learning_rate 0.1, 0.5 and 1.0.
"""
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from fastrbm import DBN, BernoulliRBM, GaussianBernoulliRBM, _cpu, _cupy
from fastrbm import _reference as ref
from fastrbm.rbm import DivergenceError, TrainConfig

KEY = np.array([0x1234ABCD, 0x0F0F0F0F], dtype=np.uint32)


@pytest.fixture(scope="module")
def digits():
    return load_digits().data


def _all_finite(model):
    return all(np.all(np.isfinite(a)) for a in (model.components_, model.intercept_visible_,
                                                 model.intercept_hidden_, model.sigma_))


@pytest.mark.parametrize("sigma", ["fixed", "learn"])
@pytest.mark.parametrize("learning_rate", [0.1, 0.5, 1.0])
def test_gaussian_rbm_divergence_is_an_error_that_names_the_fix(digits, sigma, learning_rate):
    params = dict(n_components=64, learning_rate=learning_rate, sigma=sigma, random_state=0,
                  n_jobs=1)
    model = GaussianBernoulliRBM(n_iter=10, **params)
    with warnings.catch_warnings():
        # the monitoring of a finite but huge epoch may overflow on the way
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(DivergenceError, match=r"lower learning_rate \(e\.g\. to") as info:
            model.fit(digits)
    assert isinstance(info.value, ValueError)
    assert f"{learning_rate / 10:g}" in str(info.value)
    # the last finite parameters, with counters that describe them
    assert _all_finite(model)
    assert len(model.history_) == model.n_epochs_ < 10
    assert model.n_updates_ == model.n_epochs_ * -(-len(digits) // 10)
    # ... exactly those of a fit that stopped before the diverging epoch
    if model.n_epochs_:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            again = GaussianBernoulliRBM(n_iter=model.n_epochs_, **params).fit(digits)
        np.testing.assert_array_equal(model.components_, again.components_)
        np.testing.assert_array_equal(model.sigma_, again.sigma_)


def test_partial_fit_divergence_restores_the_model(digits):
    model = GaussianBernoulliRBM(n_components=64, learning_rate=1.0, random_state=0, n_jobs=1)
    model.partial_fit(digits[:10])          # one update: still finite
    for _ in range(20):
        before = model.components_.copy(), model.n_updates_
        try:
            model.partial_fit(digits)
        except DivergenceError as exc:
            assert "partial_fit" in str(exc) and "lower learning_rate" in str(exc)
            break
    else:
        pytest.fail("partial_fit with learning_rate=1.0 did not diverge in 20 passes")
    # the call that diverged was undone: parameters and step counter
    np.testing.assert_array_equal(model.components_, before[0])
    assert model.n_updates_ == before[1] and _all_finite(model)


def test_dbn_layer_divergence_names_the_layer(digits):
    dbn = DBN((32, 16), visible_units="gaussian",
              rbm_params=[{"learning_rate": 1.0, "n_iter": 20}, {"n_iter": 1}],
              random_state=0, n_jobs=1)
    # on its way to infinity the error rises for several epochs: warned first
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.warns(ConvergenceWarning, match="may be diverging"), \
                pytest.raises(DivergenceError, match="DBN layer 1 of 2: .*lower learning_rate"):
            dbn.fit(digits)
    assert dbn.rbms_ == []


def test_stable_fit_neither_raises_nor_warns(digits):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = GaussianBernoulliRBM(n_components=32, n_iter=8, random_state=0,
                                     n_jobs=1).fit(digits)
        BernoulliRBM(n_components=32, n_iter=8, random_state=0, n_jobs=1).fit(digits / 16)
    assert _all_finite(model)


def test_rising_reconstruction_error_warns(digits):
    # a far too large step: the error climbs 0.117 -> 0.125 -> 0.133 -> 0.147
    # over epochs 3-6 (finite parameters: no error, a warning)
    X = digits / 16
    with pytest.warns(ConvergenceWarning, match=r"rose in each of the last 3 epochs.*"
                      r"lower learning_rate \(e\.g\. to 1\)"):
        model = BernoulliRBM(n_components=64, learning_rate=10.0, n_iter=6, random_state=0,
                             n_jobs=1).fit(X)
    errors = [entry["reconstruction_error"] for entry in model.history_]
    assert all(b > a for a, b in zip(errors[-4:], errors[-3:]))


def _nan_step(engine, put=lambda a: a, get=lambda a: a):
    """Log-variances before and after one epoch whose gradient is NaN (from a
    NaN weight row: every feature's step involves it)."""
    D, H, B = 6, 4, 5
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (10, D))
    W = rng.normal(0, 0.1, (H, D))
    W[0, :] = np.nan
    log_var = np.linspace(-0.5, 0.5, D)
    config = TrainConfig(k=1, persistent=False, learning_rate=0.1, momentum=0.0,
                         weight_decay=0.0, l1=0.0, sparsity_target=0.1, sparsity_cost=0.0,
                         gaussian=True, learn_sigma=True)
    lv = put(log_var.copy())
    engine.cd_update(put(X), np.arange(10, dtype=np.intp), B, put(W), put(np.zeros(D)),
                     put(np.zeros(H)), None, None, None, None, put(np.full(H, 0.1)),
                     engine.make_workspace(D, H, B, np.float64), config, KEY, 0, 1,
                     log_var=lv)
    return log_var, get(lv)


@pytest.mark.parametrize("engine", [_cpu, ref], ids=["cython", "reference"])
def test_nan_step_does_not_pass_the_log_variance_clamp(engine):
    """A NaN step leaves the log-variances as they were instead of writing
    NaN into them (the fit's divergence check then reports the NaN weights)."""
    before, after = _nan_step(engine)
    np.testing.assert_array_equal(after, before)


def test_nan_step_does_not_pass_the_log_variance_clamp_gpu_engine(gpu):
    before, after = _nan_step(_cupy, gpu.put, gpu.get)
    np.testing.assert_array_equal(after, before)
