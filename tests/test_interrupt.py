"""Ctrl-C (SIGINT) in every long call: fits stop after the epoch in progress
with consistent counters (RBMs, DBN layers, DBNClassifier pretraining and
fine-tuning), and sample / gibbs / AIS stop mid-call (calls of 10^6 steps that
would run for hours return), running in chunks that give the same numbers as
one run.  How fast they react is a speed question, not tested here.

The signal comes from a timer thread (signal.pthread_kill to the main
thread), as a terminal's Ctrl-C would; each test runs about a second.
"""
import signal
import threading
import time

import numpy as np
import pytest
from sklearn.datasets import load_digits

from fastrbm import (DBN, BernoulliRBM, DBNClassifier, GaussianBernoulliRBM, _cpu, _layout,
                     evaluation)
from fastrbm import _reference as ref
from fastrbm import _interrupt
from fastrbm._interrupt import deferred_interrupt

# the signal is sent this long after the call starts
DELAY = 0.3
KEY = np.array([0x1234ABCD, 0x0F0F0F0F], dtype=np.uint32)


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return (data.data / 16).astype(np.float32), data.target


def _interrupted(call, delay=DELAY, in_fit=False):
    """The result of ``call`` with SIGINT sent ``delay`` seconds into it.

    ``in_fit``: the delay counts from when the fit's epoch loop takes over
    SIGINT (so a slow start on a loaded machine cannot make the signal land
    before training began, where Ctrl-C is an ordinary KeyboardInterrupt).
    """
    sent = []
    started = threading.Event()

    def send():
        if in_fit:
            deadline = time.perf_counter() + 60
            while _interrupt._active is None and time.perf_counter() < deadline:
                time.sleep(0.005)
        if not started.wait(delay):
            sent.append(True)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    thread = threading.Thread(target=send)
    thread.start()
    try:
        result = call()
    finally:
        started.set()       # a call that ended before the signal: none is sent
        thread.join()
    assert sent, "the call ended before the signal was sent"
    return result


# --------------------------------------------------------- the deferral itself
def test_first_press_sets_flag_second_raises():
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt() as pending:
            assert not pending
            signal.raise_signal(signal.SIGINT)
            assert pending and pending.count == 1   # deferred: no exception yet
            pending.handled = True
            signal.raise_signal(signal.SIGINT)      # the second press raises at once
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_unhandled_press_is_raised_on_exit_and_nesting_shares_the_flag():
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt() as outer:
            with deferred_interrupt() as inner:
                assert inner is outer and inner.nested and inner.depth == 2
                signal.raise_signal(signal.SIGINT)
            assert outer and not outer.nested
            # nobody stopped because of it: the press must not be lost
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_handled_press_does_not_raise_and_foreign_handler_is_left_alone():
    with deferred_interrupt() as pending:
        signal.raise_signal(signal.SIGINT)
        pending.handled = True
    seen = []
    previous = signal.signal(signal.SIGINT, lambda *args: seen.append(args[0]))
    try:
        with deferred_interrupt() as pending:
            signal.raise_signal(signal.SIGINT)
            assert not pending and seen == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_other_threads_are_not_deferred():
    out = []

    def run():
        with deferred_interrupt() as pending:
            out.append((bool(pending), signal.getsignal(signal.SIGINT)))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert out == [(False, signal.default_int_handler)]


# ---------------------------------------------------------------- RBM fits
def _updates_per_epoch(n_rows, batch_size):
    return -(-n_rows // batch_size)


@pytest.mark.parametrize("cls", [BernoulliRBM, GaussianBernoulliRBM])
def test_rbm_fit_interrupt_keeps_counters_consistent(digits, cls):
    X, _ = digits
    params = dict(n_components=64, batch_size=10, random_state=0, n_jobs=1,
                  learning_rate=0.01)
    model = cls(n_iter=100_000, **params)
    with pytest.warns(UserWarning, match="interrupted"):
        _interrupted(lambda: model.fit(X), in_fit=True)
    assert model.stop_reason_ == "interrupted"
    assert 1 <= model.n_epochs_ < 100_000
    # every count describes the same epochs: those the parameters contain
    assert len(model.history_) == model.n_epochs_
    assert model.n_updates_ == model.n_epochs_ * _updates_per_epoch(len(X), 10)
    # ... so the model is exactly a fit of that many epochs, and stays usable
    again = cls(n_iter=model.n_epochs_, **params).fit(X)
    np.testing.assert_array_equal(model.components_, again.components_)
    np.testing.assert_array_equal(model.intercept_visible_, again.intercept_visible_)
    assert model.n_updates_ == again.n_updates_
    assert np.all(np.isfinite(model.transform(X[:5])))


def test_dbn_interrupt_stops_the_whole_stack(digits):
    X, _ = digits
    dbn = DBN((64, 32, 16), rbm_params=[{"n_iter": 100_000}, {"n_iter": 2}, {"n_iter": 2}],
              random_state=0, n_jobs=1)
    with pytest.warns(UserWarning, match="DBN.fit interrupted"):
        _interrupted(lambda: dbn.fit(X), in_fit=True)
    assert dbn.stop_reason_ == "interrupted"
    # the layers above the interrupted one were not trained
    assert len(dbn.rbms_) == 1 and len(dbn.history_) == 1
    first = dbn.rbms_[0]
    assert first.stop_reason_ == "interrupted" and 1 <= first.n_epochs_ < 100_000
    assert first.n_updates_ == first.n_epochs_ * _updates_per_epoch(len(X), 64)
    assert dbn.transform(X[:5]).shape == (5, 64)
    assert dbn.sample(3, n_steps=5).shape == (3, 64)


def test_dbn_classifier_interrupt_in_pretraining_skips_fine_tuning(digits):
    X, y = digits
    clf = DBNClassifier((64, 32), rbm_params=[{"n_iter": 100_000}, {"n_iter": 2}],
                        max_iter=3, random_state=0, n_jobs=1)
    with pytest.warns(UserWarning, match="in pretraining"):
        _interrupted(lambda: clf.fit(X, y), in_fit=True)
    assert clf.stop_reason_ == "interrupted"
    assert clf.n_iter_ == 0 and clf.history_ == [] and clf.n_updates_ == 0
    assert len(clf.dbn_.rbms_) == 1
    # consistent shapes: the pretrained first layer, the rest as initialised
    assert [W.shape for W in clf.coefs_] == [(64, 64), (32, 64), (10, 32)]
    np.testing.assert_array_equal(clf.coefs_[0], clf.dbn_.rbms_[0].components_)
    assert clf.predict(X[:5]).shape == (5,)


def test_dbn_classifier_interrupt_in_fine_tuning(digits):
    X, y = digits
    # min_updates=0: the refit below runs exactly n_iter_ epochs (the default
    # minimum of updates would lengthen a short refit)
    params = dict(hidden_layer_sizes=(64,), pretrain=False, learning_rate_schedule="constant",
                  batch_size=32, random_state=0, n_jobs=1, min_updates=0)
    clf = DBNClassifier(max_iter=100_000, **params)
    with pytest.warns(UserWarning, match="fine-tuning epochs"):
        _interrupted(lambda: clf.fit(X, y), in_fit=True)
    assert clf.stop_reason_ == "interrupted"
    assert 1 <= clf.n_iter_ < 100_000 and len(clf.history_) == clf.n_iter_
    assert clf.n_updates_ == clf.n_iter_ * _updates_per_epoch(len(X), 32)
    again = DBNClassifier(max_iter=clf.n_iter_, **params).fit(X, y)
    for W, W_again in zip(clf.coefs_, again.coefs_):
        np.testing.assert_array_equal(W, W_again)
    assert clf.score(X, y) == again.score(X, y)


# --------------------------------------------------- sample, gibbs and AIS
@pytest.fixture(scope="module")
def small_rbm(digits):
    X, _ = digits
    return BernoulliRBM(n_components=64, n_iter=1, random_state=0, n_jobs=1).fit(X)


def test_sample_reacts_to_ctrl_c(small_rbm):
    # ~10^6 steps of 200 chains: minutes to hours in one kernel call
    with pytest.raises(KeyboardInterrupt):
        _interrupted(lambda: small_rbm.sample(200, n_steps=1_000_000))
    # the model is unchanged and usable; the next call draws fresh numbers
    assert small_rbm.sample(4, n_steps=3).shape == (4, 64)


def test_gibbs_and_ais_react_to_ctrl_c(small_rbm, digits):
    X, _ = digits
    for call in (lambda: small_rbm.gibbs(X[:200], k=1_000_000),
                 lambda: evaluation.log_partition_ais(small_rbm, n_chains=200,
                                                      betas=1_000_000, random_state=0)):
        with pytest.raises(KeyboardInterrupt):
            _interrupted(call)
    assert np.isfinite(evaluation.log_partition_ais(small_rbm, n_chains=10, betas=20,
                                                    random_state=0).log_z)


@pytest.fixture
def chunk_steps():
    """Run with a fixed number of steps per chunk; restore the timed chunks."""
    previous = _layout._set_chunk_steps(0)
    yield _layout._set_chunk_steps
    _layout._set_chunk_steps(previous)


def _params(D, H, dtype, seed=3):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.5, (H, D)).astype(dtype), rng.normal(0, 0.5, D).astype(dtype),
            rng.normal(0, 0.5, H).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gaussian", [False, True])
def test_chunked_gibbs_equals_one_run(chunk_steps, dtype, gaussian):
    D, H, n, k = 13, 7, 150, 23
    W, vb, hb = _params(D, H, dtype)
    X = np.random.default_rng(1).random((n, D)).astype(dtype)
    extra = {}
    if gaussian:
        extra = {"gaussian": True, "sigma": np.linspace(0.5, 2, D).astype(dtype)}
    runs = []
    for steps in (k, 1, 3, 0):     # one chunk, one step a chunk, 3 (a remainder), timed
        chunk_steps(steps)
        runs.append(_cpu.gibbs(X, W, vb, hb, k, KEY, 5, 1, 2, **extra))
    for run in runs[1:]:
        np.testing.assert_array_equal(run, runs[0])
    # and the one-chunk run is the definition's (the reference engine)
    expected = ref.gibbs(X, W, vb, hb, k, KEY, 5, 1, 2, **extra)
    np.testing.assert_allclose(runs[0], expected, rtol=0,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gaussian", [False, True])
def test_chunked_ais_equals_one_run(chunk_steps, dtype, gaussian):
    D, H, n = 11, 6, 40
    W, vb, hb = _params(D, H, dtype)
    base = np.linspace(-1, 1, D).astype(dtype)
    betas = np.linspace(0, 1, 30)
    runs = []
    for steps in (len(betas), 1, 4, 0):
        chunk_steps(steps)
        runs.append(_cpu.ais_log_weights(W, vb, hb, base, betas, n, KEY, 2,
                                           gaussian=gaussian))
    for run in runs[1:]:
        np.testing.assert_array_equal(run, runs[0])
    expected = ref.ais_log_weights(W, vb, hb, base, betas, n, KEY, 2, gaussian=gaussian)
    np.testing.assert_allclose(runs[0], expected, rtol=1e-4 if dtype == np.float32 else 1e-9,
                               atol=1e-4 if dtype == np.float32 else 1e-9)
