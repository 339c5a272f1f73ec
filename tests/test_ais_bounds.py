"""Honest AIS (issue 22): reverse AIS, certified lower bounds, confidence
brackets, warnings, exact sampling and exact log Z by default.

Truths used: exact log Z by enumeration (log_partition_exact, itself checked
against brute force in test_evaluation.py), the NumPy reference engine for the
reverse kernel, the unnormalised log-probabilities written out by hand for a
one-step run, and a chi-square goodness-of-fit test for the exact sampler.
"""
import warnings

import numpy as np

import pytest
from scipy import stats
from scipy.special import logsumexp

from fastrbm import BernoulliRBM, GaussianBernoulliRBM, _cpu, evaluation
from fastrbm import _reference as ref
from fastrbm._units import BernoulliVisible, GaussianVisible
from fastrbm.evaluation import AISWarning


def random_model(D, H, seed, scale=1.0, dtype=np.float64):
    """A BernoulliRBM with random parameters (weights N(0, scale^2))."""
    rng = np.random.default_rng(seed)
    X = (rng.random((40, D)) < rng.uniform(0.2, 0.8, D)).astype(dtype)
    model = BernoulliRBM(n_components=H, n_iter=0, random_state=seed, n_jobs=1).fit(X)
    model.components_ = rng.normal(0, scale, (H, D)).astype(dtype)
    model.intercept_visible_ = rng.normal(0, 1, D).astype(dtype)
    model.intercept_hidden_ = rng.normal(0, 1, H).astype(dtype)
    return model, X


def trained_model(D, H, seed):
    """A BernoulliRBM trained on two noisy prototypes (two modes)."""
    rng = np.random.default_rng(seed)
    protos = (rng.random((2, D)) < 0.5).astype(np.float64)
    rows = protos[rng.integers(0, 2, 300)]
    X = np.abs(rows - (rng.random(rows.shape) < 0.05))
    model = BernoulliRBM(n_components=H, n_iter=20, learning_rate=0.1, batch_size=10,
                         random_state=seed, dtype=np.float64, n_jobs=1).fit(X)
    return model, X


def quiet_ais(model, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AISWarning)
        return evaluation.log_partition_ais(model, **kwargs)


# --------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("gaussian", [False, True])
def test_reverse_kernel_matches_reference_and_threads(dtype, gaussian):
    rng = np.random.default_rng(11)
    D, H, n = 13, 9, 37
    W = rng.normal(0, 0.5, (H, D)).astype(dtype)
    b, c, base = (rng.normal(0, 1, m).astype(dtype) for m in (D, H, D))
    start = (rng.normal(0, 1, (n, D)) if gaussian else rng.random((n, D)) < 0.5).astype(dtype)
    betas = np.linspace(1, 0, 40)
    key = np.array([5, 9], np.uint32)
    one, end_one = _cpu.ais_log_weights(W, b, c, base, betas, n, key, 1, gaussian=gaussian,
                                          start=start, return_states=True)
    two, end_two = _cpu.ais_log_weights(W, b, c, base, betas, n, key, 2, gaussian=gaussian,
                                          start=start, return_states=True)
    assert np.array_equal(one, two) and np.array_equal(end_one, end_two)
    expected, end_ref = ref.ais_log_weights(W, b, c, base, betas, n, key, gaussian=gaussian,
                                            start=start, return_states=True)
    tol = 1e-10 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(one, expected, rtol=0, atol=tol)
    assert end_one.shape == (n, D) and end_one.dtype == dtype
    if dtype == np.float64:
        np.testing.assert_allclose(end_one, end_ref, atol=1e-12)


@pytest.mark.parametrize("gaussian", [False, True])
def test_reverse_kernel_of_the_gpu_engine_matches_the_cpu_engine(gpu, gaussian):
    # ``gpu``: the host stand-in of the CUDA kernels (tests/cuda_host.py), and
    # a real GPU where there is one
    from fastrbm import _cupy

    rng = np.random.default_rng(6)
    W = rng.normal(0, 0.3, (7, 10))
    vbias, hbias, base = rng.normal(size=10), rng.normal(size=7), rng.normal(size=10)
    start = rng.normal(size=(12, 10)) if gaussian else (rng.random((12, 10)) < 0.5) * 1.0
    betas = np.linspace(1, 0, 60)
    key = np.array([5, 9], np.uint32)
    got, states = _cupy.ais_log_weights(gpu.put(W), gpu.put(vbias), gpu.put(hbias),
                                        gpu.put(base), betas, 12, key, gaussian=gaussian,
                                        start=gpu.put(start), return_states=True)
    want, want_states = _cpu.ais_log_weights(W, vbias, hbias, base, betas, 12, key, 1,
                                               gaussian=gaussian, start=start,
                                               return_states=True)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gpu.get(states), want_states, atol=1e-10)


def test_reverse_step_to_zero_is_the_log_ratio():
    # betas (1, 0): the weight is log p*_0(v) - log p*_1(v) at the start state,
    # with p*_0(v) = exp(v.b_A) 2^H (the base model) and p*_1 the model
    model, _ = random_model(7, 5, seed=3, scale=2.0)
    W, b, c = model.components_, model.intercept_visible_, model.intercept_hidden_
    base = np.linspace(-1, 1, 7)
    v = (np.random.default_rng(0).random((6, 7)) < 0.5).astype(np.float64)
    expected = (v @ base + 5 * np.log(2)) - (v @ b + np.logaddexp(0, v @ W.T + c).sum(1))
    key = np.array([1, 2], np.uint32)
    for engine in (_cpu, ref):
        got = engine.ais_log_weights(W, b, c, base, np.array([1.0, 0.0]), 6, key, 1, start=v)
        np.testing.assert_allclose(got, expected, atol=1e-12)


def test_forward_kernel_unchanged_by_the_reverse_option():
    # the old call (no start) and return_states give the same weights
    model, _ = random_model(8, 6, seed=1)
    W, b, c = model.components_, model.intercept_visible_, model.intercept_hidden_
    base = np.zeros(8)
    key = np.array([3, 4], np.uint32)
    plain = _cpu.ais_log_weights(W, b, c, base, np.linspace(0, 1, 30), 10, key, 1)
    with_states, states = _cpu.ais_log_weights(W, b, c, base, np.linspace(0, 1, 30), 10, key,
                                                 1, return_states=True)
    assert np.array_equal(plain, with_states) and set(np.unique(states)) <= {0.0, 1.0}


@pytest.mark.parametrize("engine", [_cpu, ref])
def test_betas_may_reach_zero_only_at_the_end(engine):
    model, _ = random_model(5, 4, seed=0)
    W, b, c = model.components_, model.intercept_visible_, model.intercept_hidden_
    with pytest.raises(ValueError, match="only at its end"):
        engine.ais_log_weights(W, b, c, np.zeros(5), np.array([1.0, 0.0, 0.5, 0.0]), 3,
                               np.array([1, 2], np.uint32), 1, start=np.zeros((3, 5)))
    with pytest.raises(ValueError, match="start must have shape"):
        _cpu.ais_log_weights(W, b, c, np.zeros(5), np.array([1.0, 0.0]), 3,
                               np.array([1, 2], np.uint32), 1, start=np.zeros((2, 5)))


# --------------------------------------------------------------------------- exact pieces
@pytest.mark.parametrize("D,H", [(4, 3), (3, 6)])       # hidden side, visible side enumerated
def test_exact_samples_follow_the_model(D, H):
    # chi-square goodness of fit of 4000 exact draws against p(v) by
    # enumeration; false-alarm rate 1e-4 per case
    model, _ = random_model(D, H, seed=D + H, scale=1.5)
    W = model.components_.astype(np.float64)
    b, c = model.intercept_visible_, model.intercept_hidden_
    samples, log_z = evaluation._exact_samples(BernoulliVisible(), W, b, c, 4000,
                                               np.random.default_rng(7))
    assert log_z == pytest.approx(evaluation.log_partition_exact(model), abs=1e-10)
    states = evaluation._state_bits(0, 1 << D, D)
    log_p = -model.free_energy(states) - log_z
    index = (samples @ (1 << np.arange(D))).astype(int)
    counts = np.bincount(index, minlength=1 << D)
    _, p_value = stats.chisquare(counts, 4000 * np.exp(log_p) / np.exp(log_p).sum())
    assert p_value > 1e-4


def test_gaussian_exact_samples_have_the_model_moments():
    rng = np.random.default_rng(2)
    W = rng.normal(0, 0.7, (3, 2))
    b, c = rng.normal(0, 1, 2), rng.normal(0, 1, 3)
    samples, log_z = evaluation._exact_samples(GaussianVisible(), W, b, c, 20000, rng)
    # mixture over h of N(h W + b, I): mean and log Z by enumeration
    h = evaluation._state_bits(0, 8, 3)
    m = h @ W + b
    log_w = h @ c + 0.5 * (m * m).sum(1)
    weights = np.exp(log_w - logsumexp(log_w))
    mean = weights @ m
    # standard error of each mean coordinate <= sqrt(var / n); 5 s.e. bound
    se = np.sqrt(samples.var(axis=0) / 20000)
    assert np.all(np.abs(samples.mean(axis=0) - mean) < 5 * se)
    assert log_z == pytest.approx(logsumexp(log_w) - 0.5 * b @ b + np.log(2 * np.pi), abs=1e-12)


def test_certified_bound_is_exact_when_every_state_is_visited():
    model, _ = random_model(6, 9, seed=4, scale=1.5)
    W = model.components_.astype(np.float64)
    b, c = model.intercept_visible_, model.intercept_hidden_
    every = evaluation._state_bits(0, 64, 6)
    certified, mean_field = evaluation._certified_lower_bound(BernoulliVisible(), W, b, c, [every])
    exact = evaluation.log_partition_exact(model)
    assert certified == pytest.approx(exact, abs=1e-10)
    assert mean_field <= exact + 1e-12
    # half the states: strictly below, and the mean-field value never below the
    # best -F(v) it starts from
    some = every[::2]
    certified, mean_field = evaluation._certified_lower_bound(BernoulliVisible(), W, b, c, [some])
    assert certified < exact
    assert mean_field >= np.max(-model.free_energy(some)) - 1e-12


@pytest.mark.parametrize("make", [lambda s: random_model(10, 14, s, scale=1.5),
                                  lambda s: trained_model(12, 10, s)])
def test_certified_and_mean_field_bounds_hold(make):
    for seed in range(3):
        model, X = make(seed)
        exact = evaluation.log_partition_exact(model)
        result = quiet_ais(model, n_chains=20, betas=200, random_state=seed, data=X)
        assert result.log_z_mean_field <= result.log_z_certified <= exact + 1e-9
        assert result.log_z_low >= result.log_z_certified


def test_gaussian_certified_bound_holds():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)) + 3 * (rng.random((200, 1)) < 0.5)
    for sigma in (None, np.array([0.5, 1.0, 2.0, 0.8, 1.3])):
        model = GaussianBernoulliRBM(n_components=6, n_iter=5, random_state=0,
                                     dtype=np.float64).fit(X)
        if sigma is not None:
            model.sigma_ = sigma
        exact = evaluation.log_partition_exact(model)
        result = quiet_ais(model, n_chains=30, betas=500, random_state=1, data=X)
        assert result.log_z_certified <= exact + 1e-9
        assert result.reverse_exact
        assert result.log_z_exact == pytest.approx(exact, abs=1e-9)
        assert result.log_z_low <= exact <= result.log_z_high


# --------------------------------------------------------------------------- coverage
def test_bracket_coverage_and_unbiasedness_over_200_runs():
    """200 seeded AIS runs (forward + reverse from exact samples) on 8 models
    with exact log Z: 4 shapes, random and trained, 25 seeds each.

    1. Coverage: [log_z_low, log_z_high] misses log Z with probability at most
       1 - confidence = 5% per run, so misses ~ at most Binomial(200, 0.05)
       (mean 10); the test fails at 22 or more misses, a false-alarm rate below
       0.1% (binomial tail P(X >= 22) = 7e-4).
    2. Unbiasedness, which a wrong log Z of the base or a wrong increment
       would break: E[Z-hat / Z] = 1 (forward) and E[Z / Z-hat_reverse] = 1
       (reverse from exact samples).  Each is checked as |mean - 1| < 4.5
       standard errors of the mean over the runs (normal approximation:
       false-alarm rate about 1e-5 each).
    3. The stochastic sandwich: log_z errs low and log_z_reverse high on
       average (mean error within 4.5 s.e. of the right side of 0).
    """
    models = []
    for i, (D, H) in enumerate([(8, 6), (10, 12), (12, 9), (6, 16)]):
        models.append(random_model(D, H, seed=50 + i, scale=1.2)[0])
        models.append(trained_model(D, H, seed=60 + i)[0])
    misses, forward, backward = 0, [], []
    for m, model in enumerate(models):
        exact = evaluation.log_partition_exact(model)
        for seed in range(25):
            r = quiet_ais(model, n_chains=20, betas=200, random_state=1000 * m + seed)
            assert r.reverse_exact
            misses += not (r.log_z_low <= exact <= r.log_z_high)
            forward.append(r.log_z - exact)
            backward.append(r.log_z_reverse - exact)
    forward, backward = np.array(forward), np.array(backward)
    assert misses < 22, misses

    def within(values, target):
        se = values.std(ddof=1) / np.sqrt(len(values))
        return abs(values.mean() - target) < 4.5 * se + 1e-12

    assert within(np.exp(forward), 1.0), np.exp(forward).mean()
    assert within(np.exp(-backward), 1.0), np.exp(-backward).mean()
    se_f = forward.std(ddof=1) / np.sqrt(len(forward))
    se_b = backward.std(ddof=1) / np.sqrt(len(backward))
    assert forward.mean() < 4.5 * se_f and backward.mean() > -4.5 * se_b


# --------------------------------------------------------------------------- result, warnings
def test_result_fields_and_defaults():
    model, X = random_model(10, 8, seed=5)
    r = quiet_ais(model, n_chains=30, betas=500, random_state=0)
    assert r.reverse_log_weights.shape == (30,) and r.reverse_exact
    assert 1 <= r.ess <= 30 and r.confidence == 0.95
    assert r.log_z_high == pytest.approx(r.log_z_reverse + np.log(40))
    assert r.log_z_low == pytest.approx(max(r.log_z_certified, r.log_z - np.log(40)))
    assert r.gap == pytest.approx(r.log_z_reverse - max(r.log_z, r.log_z_certified))
    assert r.log_z_exact == pytest.approx(evaluation.log_partition_exact(model))
    one_sided = quiet_ais(model, n_chains=30, betas=500, random_state=0, reverse=False)
    assert one_sided.log_z_high == np.inf and np.isnan(one_sided.log_z_reverse)
    assert one_sided.log_z_low == pytest.approx(max(one_sided.log_z_certified,
                                                    r.log_z - np.log(20)), abs=1e-9)
    # without the reverse chains' start states the certified bound has fewer states
    assert one_sided.log_z_certified <= r.log_z_certified
    # the forward weights do not depend on the reverse run
    np.testing.assert_array_equal(one_sided.log_weights, r.log_weights)
    for bad in (0, 1, 1.5, "x"):
        with pytest.raises(ValueError, match="confidence"):
            evaluation.log_partition_ais(model, confidence=bad)
    with pytest.raises(ValueError, match="reverse_burn_in"):
        evaluation.log_partition_ais(model, reverse_burn_in=-1)


def test_approximate_reverse_start_on_a_large_layer(monkeypatch):
    # both layers above EXACT_DEFAULT_UNITS (lowered here to keep log Z cheap
    # to enumerate): the reverse chains start from data rows after Gibbs steps
    monkeypatch.setattr(evaluation, "EXACT_DEFAULT_UNITS", 8)
    model, X = trained_model(20, 12, seed=3)
    exact = evaluation.log_partition_exact(model)
    r = quiet_ais(model, n_chains=40, betas=2000, random_state=0, data=X, reverse_burn_in=200)
    assert not r.reverse_exact and r.log_z_exact is None
    assert r.log_z_certified <= exact
    assert r.log_z_low <= exact <= r.log_z_high
    again = quiet_ais(model, n_chains=40, betas=2000, random_state=0, data=X,
                      reverse_burn_in=200)
    np.testing.assert_array_equal(r.reverse_log_weights, again.reverse_log_weights)


def test_wide_sandwich_and_missed_mass_warn():
    # strong weights and a 3-temperature schedule: forward AIS far too low
    model, X = random_model(12, 10, seed=2, scale=3.0)
    with pytest.warns(AISWarning) as record:
        r = evaluation.log_partition_ais(model, n_chains=10, betas=3, random_state=0, data=X)
    text = " ".join(str(w.message) for w in record)
    assert "nats wide" in text and "certified lower bound" in text
    assert r.problems and not r.reliable
    assert evaluation.log_partition_exact(model) > r.log_z + 1


def test_good_run_does_not_warn():
    model, _ = random_model(10, 8, seed=5, scale=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AISWarning)
        r = evaluation.log_partition_ais(model, n_chains=50, betas=2000, random_state=0)
    assert r.reliable and r.gap < evaluation.MAX_GAP_NATS


@pytest.mark.parametrize("reverse,certified,flagged", [
    (91.0, 80.0, True),        # reverse + t < forward - t: the bracket is empty
    (97.0, 80.0, False),       # inverted by less than 2 t: inside the bracket's slack
    (91.0, 95.0, False),       # certified above the upper bound: its own message
])
def test_inverted_sandwich_is_flagged(reverse, certified, flagged):
    # _ais_problems on the fields it reads: forward 100, t = log(2 / 0.05)
    from types import SimpleNamespace

    t = np.log(2 / 0.05)
    log_z = 100.0
    result = SimpleNamespace(
        log_z=log_z, log_z_certified=certified, log_z_reverse=reverse,
        log_z_low=max(certified, log_z - t), log_z_high=reverse + t, reverse_exact=False,
        gap=reverse - max(log_z, certified), ess=50.0, log_z_exact=None)
    problems = evaluation._ais_problems(result, n_chains=50)
    assert any("bracket is empty" in p for p in problems) == flagged
    if certified > reverse + t:
        assert any("certified lower bound" in p for p in problems)


def test_degenerate_weights_are_flagged():
    model, _ = random_model(12, 10, seed=2, scale=3.0)
    r = quiet_ais(model, n_chains=50, betas=2, random_state=0)
    assert r.ess < 0.1 * 50
    assert any("degenerate" in p for p in r.problems)


def test_log_likelihood_uses_exact_log_z_for_a_small_layer(monkeypatch):
    model, X = random_model(30, 12, seed=1)
    exact = evaluation.log_partition_exact(model)

    def no_ais(*args, **kwargs):
        raise AssertionError("AIS should not run for a 12-unit layer")

    monkeypatch.setattr(evaluation, "log_partition_ais", no_ais)
    np.testing.assert_allclose(evaluation.log_likelihood(model, X),
                               -model.free_energy(X) - exact, rtol=1e-12)


def test_cli_evaluate_ais_prints_the_sandwich_and_warnings(tmp_path, capsys, monkeypatch):
    import json

    from fastrbm import cli, io

    assert cli.main(["train", "--n-iter", "2", "--n-components", "8", "--no-plots", "--quiet",
                     "--n-jobs", "1", "--out", str(tmp_path)]) == 0
    model_path = str(tmp_path / "model.npz")
    capsys.readouterr()
    # every gap counts as wide: the warning must reach stderr as one line
    monkeypatch.setattr(evaluation, "MAX_GAP_NATS", -np.inf)
    assert cli.main(["evaluate", model_path, "--data", "digits", "--ais", "--ais-chains", "10",
                     "--json", str(tmp_path / "e.json")]) == 0
    out, err = capsys.readouterr()
    assert "ais_ll_sandwich_low" in out and "ais_log_partition_reverse" in out
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("warning: AIS") for line in lines)
    assert any("sandwich is" in line for line in lines)
    m = json.loads((tmp_path / "e.json").read_text())
    model = io.load_model(model_path)
    X_test, _, _, _ = cli.load_data("digits", "test")
    neg_f = float(np.mean(-model.free_energy(X_test)))
    assert m["ais_log_likelihood"] == pytest.approx(neg_f - m["ais_log_partition"])
    assert m["ais_ll_sandwich_low"] == pytest.approx(neg_f - m["ais_log_partition_reverse"])
    assert m["ais_log_likelihood_low"] == pytest.approx(neg_f - m["ais_log_partition_high"])
    assert m["ais_log_likelihood_high"] == pytest.approx(neg_f - m["ais_log_partition_low"])
    assert m["ais_reverse_start"] == "exact"
    # an 8-unit hidden layer: exact log Z within the printed bracket
    exact = evaluation.log_partition_exact(model)
    assert m["ais_log_partition_low"] <= exact <= m["ais_log_partition_high"]


@pytest.mark.parametrize("exact_units", [20, 2])            # exact / approximate reverse start
def test_gpu_model_gives_the_cpu_result(gpu, monkeypatch, exact_units):
    monkeypatch.setattr(evaluation, "EXACT_DEFAULT_UNITS", exact_units)
    rng = np.random.default_rng(4)
    X = (rng.random((80, 12)) < rng.random(12)).astype(np.float64)
    params = dict(n_components=6, n_iter=2, batch_size=10, random_state=0, n_jobs=1)
    cpu = BernoulliRBM(**params).fit(X)
    dev = BernoulliRBM(**params).fit(gpu.put(X))
    kwargs = dict(n_chains=10, betas=100, random_state=1, reverse_burn_in=20)
    on_cpu = quiet_ais(cpu, data=X, **kwargs)
    on_dev = quiet_ais(dev, data=gpu.put(X), **kwargs)
    assert on_dev.reverse_exact == on_cpu.reverse_exact == (exact_units == 20)
    np.testing.assert_allclose(on_dev.reverse_log_weights, on_cpu.reverse_log_weights,
                               rtol=0, atol=1e-9)
    for name in ("log_z", "log_z_reverse", "log_z_certified", "log_z_low", "log_z_high"):
        assert getattr(on_dev, name) == pytest.approx(getattr(on_cpu, name), abs=1e-9), name
