"""Monitoring during fit: validation data, history, callbacks, early stopping,
progress output, Ctrl-C."""
import signal
import sys

import numpy as np
import pytest

import fastrbm._engine as engine_module
from fastrbm import BernoulliRBM, evaluation


def data(n=120, d=12, seed=0):
    rng = np.random.default_rng(seed)
    proto = rng.random((3, d)) < 0.5
    rows = proto[rng.integers(0, 3, n)] ^ (rng.random((n, d)) < 0.1)
    return rows.astype(np.float64)


def small(**kw):
    params = dict(n_components=6, n_iter=4, batch_size=10, learning_rate=0.1,
                  random_state=0)
    params.update(kw)
    return BernoulliRBM(**params)


def test_validation_data_history_and_free_energy_gap():
    X, V = data(60), data(40, seed=1)
    model = small().fit(X, validation_data=V)
    assert len(model.history_) == 4
    last = model.history_[-1]
    for key in ("epoch", "reconstruction_error", "pseudo_likelihood", "seconds",
                "val_reconstruction_error", "val_pseudo_likelihood", "free_energy_gap"):
        assert key in last
    # training set <= 64 rows: the monitored training subset is all of X
    expected = model.free_energy(V).mean() - model.free_energy(X).mean()
    assert last["free_energy_gap"] == pytest.approx(expected, abs=1e-9)
    recon = model.reconstruct(V)
    assert last["val_reconstruction_error"] == pytest.approx(np.mean((V - recon) ** 2))
    assert "free_energy_gap" not in small().fit(X).history_[-1]


def test_validation_fraction_holds_rows_out():
    X = data(100)
    held = small(validation_fraction=0.2).fit(X)
    assert "free_energy_gap" in held.history_[-1]
    again = small(validation_fraction=0.2).fit(X)
    assert held.history_[-1]["free_energy_gap"] == again.history_[-1]["free_energy_gap"]
    full = small().fit(X)
    # 80 training rows at batch 10: 8 updates per epoch, not 10
    assert held.n_updates_ == 4 * 8 and full.n_updates_ == 4 * 10
    assert not np.allclose(held.components_, full.components_)


def test_callbacks_receive_metrics_and_can_stop():
    seen = []

    def record(model, metrics):
        seen.append((model.n_epochs_, metrics))

    def stop_at_3(model, metrics):
        return False if metrics["epoch"] == 3 else None

    model = small(n_iter=6).fit(data(), callbacks=[record, stop_at_3])
    assert [n for n, _ in seen] == [1, 2, 3]
    assert seen[-1][1] is model.history_[-1]
    assert len(model.history_) == 3 and model.stop_reason_ == "callback"
    full = small(n_iter=6).fit(data(), callbacks=record)
    assert len(full.history_) == 6 and full.stop_reason_ is None


def test_early_stopping_patience():
    X = data()
    # learning_rate 0: the metric never changes, so it never improves after epoch 1
    frozen = small(n_iter=20, learning_rate=0.0, early_stopping="reconstruction_error",
                   patience=2).fit(X)
    assert len(frozen.history_) == 3 and frozen.stop_reason_ == "early_stopping"
    # a tolerance larger than any change stops after 1 + patience epochs too
    big_tol = small(n_iter=20, early_stopping="pseudo_likelihood", patience=3,
                    tol=1e6).fit(X)
    assert len(big_tol.history_) == 4
    # with validation data the validation metric is used
    calls = []
    model = small(n_iter=5, early_stopping="reconstruction_error", patience=10)
    model.fit(X, validation_data=data(30, seed=2),
              callbacks=lambda m, e: calls.append(e["val_reconstruction_error"]))
    assert len(model.history_) == 5 and model.stop_reason_ is None
    assert calls == [e["val_reconstruction_error"] for e in model.history_]
    with pytest.raises(ValueError, match="validation data"):
        small(early_stopping="free_energy_gap").fit(X)


def test_keyboard_interrupt_keeps_model_and_history():
    X = data()

    def interrupt(model, metrics):
        if metrics["epoch"] == 2:
            signal.raise_signal(signal.SIGINT)      # Ctrl-C

    with pytest.warns(UserWarning, match="interrupted after 2 epochs"):
        model = small(n_iter=6).fit(X, callbacks=interrupt)
    assert model.stop_reason_ == "interrupted" and len(model.history_) == 2
    assert np.all(np.isfinite(model.transform(X)))


def test_keyboard_interrupt_right_after_the_kernel(monkeypatch):
    # Ctrl-C is delivered when the nogil epoch kernel returns: that epoch is
    # finished and counted everywhere (parameters, n_updates_, history_)
    real = engine_module.get_engine
    calls = []

    class Engine:
        def __getattr__(self, name):
            return getattr(real(None), name)

        def cd_update(self, *args):
            real(None).cd_update(*args)
            calls.append(1)
            if len(calls) == 3:
                signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(engine_module, "get_engine", lambda X=None: Engine())
    with pytest.warns(UserWarning, match="interrupted"):
        model = small(n_iter=6).fit(data())
    assert len(model.history_) == model.n_epochs_ == 3 and model.n_updates_ == 3 * 12
    monkeypatch.setattr(engine_module, "get_engine", real)
    assert np.all(np.isfinite(model.free_energy(data())))


def test_progress_plain_line_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)     # import fails
    small(n_iter=2, verbose=1).fit(data(), validation_data=data(20, seed=3))
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and out[1].startswith("[BernoulliRBM] Iteration 2")
    assert "free energy gap" in out[1]


def test_progress_lines_of_a_long_fit_are_thinned(monkeypatch, capsys):
    # 250 epochs (a small data set raised by min_updates): the first line,
    # then every 3rd epoch's (ceil(250 / 100)), and the last: 1 + 83 + 1
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    X = data(30)
    model = small(n_iter=1, min_updates=750, verbose=1).fit(X)
    assert model.n_epochs_ == 250
    out = capsys.readouterr().out.strip().splitlines()
    epochs = [int(line.split("Iteration ")[1].split(",")[0]) for line in out]
    assert epochs == [1] + list(range(3, 250, 3)) + [250]
    assert "(then a line every 3 epochs of 250)" in out[0]
    # up to 100 epochs: every epoch's line, as before
    small(n_iter=1, min_updates=300, verbose=1).fit(X)
    assert len(capsys.readouterr().out.strip().splitlines()) == 100
    # a fit that stops between printed lines shows its last epoch

    def stop_after_100(model, entry):
        return entry["epoch"] < 100         # 100 is not a multiple of 3
    small(n_iter=1, min_updates=750, verbose=1).fit(X, callbacks=[stop_after_100])
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-2].startswith("[BernoulliRBM] Iteration 99,")
    assert out[-1].startswith("[BernoulliRBM] Iteration 100,")


def test_progress_line_of_gaussian_units_has_no_pseudo_likelihood(monkeypatch, capsys):
    # a Gaussian RBM's history_ holds NaN pseudo-likelihoods (real-valued
    # units have none): the printed line leaves them out instead of "nan"
    from fastrbm import GaussianBernoulliRBM
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    X = np.random.default_rng(0).normal(3.0, 2.0, (60, 6))
    model = GaussianBernoulliRBM(n_components=3, n_iter=2, verbose=1, random_state=0).fit(X)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and out[1].startswith("[GaussianBernoulliRBM] Iteration 2, "
                                               "reconstruction error = ")
    assert "nan" not in "".join(out) and np.isnan(model.history_[-1]["pseudo_likelihood"])
    small(n_iter=1, verbose=1).fit(data())
    assert "pseudo-likelihood = " in capsys.readouterr().out


def test_progress_bar_with_tqdm(capsys):
    pytest.importorskip("tqdm")
    small(n_iter=3, verbose=1).fit(data())
    captured = capsys.readouterr()
    assert "3/3" in captured.err and captured.out == ""


def test_ais_every_records_log_likelihood():
    X = data(60, d=8)
    model = small(n_iter=4, ais_every=2).fit(X, validation_data=data(20, d=8, seed=4))
    assert [("log_z" in e) for e in model.history_] == [False, True, False, True]
    last = model.history_[-1]
    # 100 chains x 1000 temperatures on an 8-visible model: close to exact
    assert abs(last["log_z"] - evaluation.log_partition_exact(model)) < 0.1
    expected = evaluation.log_likelihood(model, X, log_z=last["log_z"]).mean()
    assert last["log_likelihood"] == pytest.approx(expected, rel=1e-9)
    assert "val_log_likelihood" in last


@pytest.mark.parametrize("params, match", [
    ({"validation_fraction": 0.0}, "validation_fraction"),
    ({"validation_fraction": 1.0}, "validation_fraction"),
    ({"early_stopping": "accuracy"}, "early_stopping"),
    ({"patience": 0}, "patience"),
    ({"tol": -1.0}, "tol"),
    ({"ais_every": -1}, "ais_every"),
    ({"early_stopping": "log_likelihood"}, "ais_every"),
    ({"validation_fraction": 0.001}, "no validation"),
])
def test_bad_monitoring_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        small(**params).fit(data())


def test_bad_callbacks_and_validation_data():
    with pytest.raises(TypeError, match="callables"):
        small().fit(data(), callbacks=[1])
    with pytest.raises(ValueError):
        small().fit(data(), validation_data=np.ones((5, 3)))
