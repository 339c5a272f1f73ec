"""fastrbm.evaluation: exact log Z, AIS, log-likelihood, exact pseudo-likelihood.

Truths used: brute-force enumeration of both layers (itertools, float64),
the NumPy reference engine (_reference.ais_log_weights) for the AIS kernel,
and normalisation (probabilities of all states sum to one).
"""
import itertools

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.exceptions import NotFittedError

from fastrbm import BernoulliRBM, _cpu, evaluation
from fastrbm import _reference as ref


def make_model(D, H, seed, scale=1.0, dtype=np.float64):
    """A BernoulliRBM with random parameters (weights N(0, scale^2))."""
    rng = np.random.default_rng(seed)
    X = (rng.random((40, D)) < rng.uniform(0.2, 0.8, D)).astype(dtype)
    model = BernoulliRBM(n_components=H, n_iter=0, random_state=seed).fit(X)
    model.components_ = rng.normal(0, scale, (H, D)).astype(dtype)
    model.intercept_visible_ = rng.normal(0, 1, D).astype(dtype)
    model.intercept_hidden_ = rng.normal(0, 1, H).astype(dtype)
    return model, X


def all_states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def brute_log_z(model):
    """log Z summed over every (v, h) pair, float64."""
    W = np.asarray(model.components_, np.float64)
    b = np.asarray(model.intercept_visible_, np.float64)
    c = np.asarray(model.intercept_hidden_, np.float64)
    V, Hs = all_states(W.shape[1]), all_states(W.shape[0])
    energy = (V @ b)[:, None] + (Hs @ c)[None, :] + V @ W.T @ Hs.T
    return float(logsumexp(energy))


@pytest.mark.parametrize("D,H", [(7, 5), (5, 8), (6, 6)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_partition_exact_equals_brute_force(D, H, dtype):
    model, _ = make_model(D, H, seed=D * 10 + H, scale=1.5, dtype=dtype)
    assert evaluation.log_partition_exact(model) == pytest.approx(brute_log_z(model), abs=1e-9)


def test_log_partition_exact_large_weights_no_overflow():
    # energies of several hundred: a naive sum of exp() would overflow
    model, _ = make_model(6, 7, seed=3, scale=30.0)
    got = evaluation.log_partition_exact(model)
    assert np.isfinite(got) and got == pytest.approx(brute_log_z(model), rel=1e-12)


def test_log_partition_exact_refuses_large_layers():
    model, _ = make_model(30, 26, seed=0)
    with pytest.raises(ValueError, match="log_partition_ais"):
        evaluation.log_partition_exact(model)
    # one small layer is enough
    model, _ = make_model(40, 12, seed=0)
    assert np.isfinite(evaluation.log_partition_exact(model))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ais_kernel_matches_reference_and_threads(dtype):
    rng = np.random.default_rng(5)
    D, H, n = 13, 9, 37                      # odd sizes: partial Philox blocks, uneven row blocks
    W = rng.normal(0, 1, (H, D)).astype(dtype)
    b, c, base = (rng.normal(0, 1, m).astype(dtype) for m in (D, H, D))
    betas = np.concatenate([[0, 0], np.linspace(0, 1, 40)])  # a repeated 0: zero increment
    key = np.array([7, 11], np.uint32)
    one = _cpu.ais_log_weights(W, b, c, base, betas, n, key, 1)
    two = _cpu.ais_log_weights(W, b, c, base, betas, n, key, 2)
    assert one.dtype == np.float64 and one.shape == (n,)
    assert np.array_equal(one, two)
    expected = ref.ais_log_weights(W, b, c, base, betas, n, key)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(one, expected, rtol=0, atol=tol)


def test_ais_base_draw_uses_stream_3():
    # with betas (0, 1) the weight is log p*_1(v) - log p*_0(v) at the base draw,
    # the draw being step 0, phase 1 of STREAM_AIS
    model, _ = make_model(6, 4, seed=2)
    W, b, c = model.components_, model.intercept_visible_, model.intercept_hidden_
    base = np.linspace(-1, 1, 6)
    key = np.array([3, 4], np.uint32)
    u = ref.uniforms(key, np.arange(5), 6, 0, ref.STREAM_AIS, 1, np.float64)
    v = (u < ref.sigmoid(base)).astype(np.float64)
    expected = v @ (b - base) + np.logaddexp(0, v @ W.T + c).sum(1) - 4 * np.log(2)
    got = _cpu.ais_log_weights(W, b, c, base, np.array([0.0, 1.0]), 5, key, 1)
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_ais_default_schedule_within_0_1_nats():
    # the Salakhutdinov-Murray schedule (14,501 temperatures), 100 chains
    for seed, (D, H) in enumerate([(9, 12), (10, 20)]):
        model, _ = make_model(D, H, seed=100 + seed, scale=1.0)
        result = evaluation.log_partition_ais(model, random_state=seed)
        assert result.n_temperatures == 14501
        exact = evaluation.log_partition_exact(model)
        assert abs(result.log_z - exact) < 0.1, (result.log_z, exact)
        assert result.log_z_low <= result.log_z <= result.log_z_high


def test_ais_bracket_contains_exact_in_19_of_20_seeds():
    # The 95% bracket (Markov bounds on the forward and reverse estimates,
    # test_ais_bounds.py) misses at most 5% of the time.  Fixed seeds:
    # deterministic.
    hits = 0
    for seed in range(20):
        H = 8 + seed % 13                    # 8..20 hidden units
        model, _ = make_model(10, H, seed=seed, scale=1.0)
        exact = evaluation.log_partition_exact(model)
        result = evaluation.log_partition_ais(model, n_chains=50, betas=3000,
                                              random_state=seed)
        hits += result.log_z_low <= exact <= result.log_z_high
    assert hits >= 19


def test_ais_is_deterministic_and_thread_independent():
    model, X = make_model(8, 10, seed=4, dtype=np.float32)
    first = evaluation.log_partition_ais(model, n_chains=10, betas=50, random_state=1)
    model.set_params(n_jobs=1)
    again = evaluation.log_partition_ais(model, n_chains=10, betas=50, random_state=1)
    model.set_params(n_jobs=2)
    threads = evaluation.log_partition_ais(model, n_chains=10, betas=50, random_state=1)
    other = evaluation.log_partition_ais(model, n_chains=10, betas=50, random_state=2)
    assert np.array_equal(first.log_weights, again.log_weights)
    assert np.array_equal(first.log_weights, threads.log_weights)
    assert not np.array_equal(first.log_weights, other.log_weights)


def test_ais_base_rate_model():
    model, X = make_model(8, 5, seed=6)
    # 3 temperatures cannot support an estimate: warned about
    with pytest.warns(evaluation.AISWarning, match="nats wide"):
        result = evaluation.log_partition_ais(model, n_chains=4, betas=3, random_state=0)
    p = np.clip(X.mean(0), 1e-3, 1 - 1e-3)
    np.testing.assert_allclose(result.base_visible_bias, np.log(p / (1 - p)))
    np.testing.assert_allclose(result.log_z_base,
                               5 * np.log(2) + np.logaddexp(0, result.base_visible_bias).sum())
    ones = np.ones((3, 8))
    with pytest.warns(evaluation.AISWarning):
        with_data = evaluation.log_partition_ais(model, n_chains=4, betas=3, random_state=0,
                                                 data=ones)
    np.testing.assert_allclose(with_data.base_visible_bias, np.log(0.999 / 0.001))


def test_ais_schedule():
    sm = evaluation.ais_schedule()
    assert len(sm) == 14501 and sm[0] == 0 and sm[-1] == 1 and np.all(np.diff(sm) > 0)
    np.testing.assert_allclose(np.diff(sm)[[0, 600, 5000]], [1e-3, 1e-4, 1e-5])
    np.testing.assert_allclose(evaluation.ais_schedule(5), [0, .25, .5, .75, 1])
    np.testing.assert_array_equal(evaluation.ais_schedule([0, 0.3, 1]), [0, 0.3, 1])
    for bad in (1, [0, 0.5], [0.1, 1], [0, 0.6, 0.5, 1], [0, np.nan, 1], [[0, 1]]):
        with pytest.raises(ValueError, match="betas"):
            evaluation.ais_schedule(bad)


def test_ais_bad_arguments():
    model, _ = make_model(5, 4, seed=0)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_chains"):
            evaluation.log_partition_ais(model, n_chains=bad)
    with pytest.raises(TypeError, match="fastrbm RBM"):
        evaluation.log_partition_ais(object())
    with pytest.raises(NotFittedError):
        evaluation.log_partition_exact(BernoulliRBM())
    with pytest.raises(ValueError):
        evaluation.log_partition_ais(model, data=np.ones((3, 6)))   # wrong feature count

    from fastrbm import GaussianBernoulliRBM

    with pytest.raises(NotFittedError):
        evaluation.log_partition_exact(GaussianBernoulliRBM())
    gauss = GaussianBernoulliRBM(n_components=3, n_iter=1, random_state=0).fit(
        np.random.default_rng(0).normal(size=(20, 4)))
    with pytest.raises(NotImplementedError, match="GaussianBernoulliRBM"):
        evaluation.pseudo_likelihood(gauss, np.zeros((2, 4)))


def test_log_likelihood_normalised_and_uses_log_z():
    model, X = make_model(7, 9, seed=8, dtype=np.float32)
    exact = evaluation.log_partition_exact(model)
    states = all_states(7).astype(np.float32)
    log_p = evaluation.log_likelihood(model, states, log_z=exact)
    assert log_p.dtype == np.float64
    assert np.exp(log_p).sum() == pytest.approx(1.0, abs=1e-5)
    ais = evaluation.log_partition_ais(model, n_chains=20, betas=200, random_state=0)
    np.testing.assert_allclose(evaluation.log_likelihood(model, X, log_z=ais),
                               evaluation.log_likelihood(model, X, log_z=ais.log_z))
    # uint8 and bool input mean the same data
    np.testing.assert_allclose(evaluation.log_likelihood(model, states.astype(bool), exact),
                               log_p)
    with pytest.raises(ValueError, match="log_z"):
        evaluation.log_likelihood(model, X, log_z=np.nan)


def test_pseudo_likelihood_equals_enumeration():
    model, _ = make_model(6, 5, seed=9, scale=2.0)
    V = all_states(6)
    log_p = evaluation.log_likelihood(model, V, log_z=evaluation.log_partition_exact(model))
    index = {tuple(v): i for i, v in enumerate(V)}
    terms = np.zeros((len(V), 6))             # log P(v_i | v_-i)
    for n, v in enumerate(V):
        for i in range(6):
            w = v.copy()
            w[i] = 1 - w[i]
            terms[n, i] = log_p[n] - np.logaddexp(log_p[n], log_p[index[tuple(w)]])
    expected = terms.sum(axis=1)
    got = evaluation.pseudo_likelihood(model, V)
    np.testing.assert_allclose(got, expected, atol=1e-10)
    np.testing.assert_allclose(evaluation.pseudo_likelihood(model, V, normalize=True),
                               expected / 6, atol=1e-10)
    # scikit-learn's one-bit score is D times one of the terms summed here
    one_bit = model.score_samples(V)
    assert np.all(np.min(np.abs(6 * terms - one_bit[:, None]), axis=1) < 1e-5)
