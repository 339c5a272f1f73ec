"""Parallel tempering (fastrbm.sampling) against exact distributions."""
import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from fastrbm import BernoulliRBM, GaussianBernoulliRBM
from fastrbm.sampling import parallel_tempering

D = 8


def two_mode_model(strength=8.0):
    """An RBM with two well separated modes (v all on / all off), equally
    probable: one hidden unit with weight w to every visible unit, visible
    biases -w/2 and hidden bias -w D / 2 make p(h=1) = p(h=0); Gibbs chains
    cross between the modes with probability ~ sigmoid(-w D / 2) per step."""
    model = BernoulliRBM(n_components=1, n_iter=0, random_state=0, n_jobs=1)
    model.fit(np.zeros((2, D)))
    model.components_[:] = strength
    model.intercept_visible_[:] = -strength / 2
    model.intercept_hidden_[:] = -strength * D / 2
    # the base model of the ladder: uniform visible units
    model._visible_means = np.full(D, 0.5)
    return model


def exact_distribution(model):
    states = np.array(list(itertools.product([0, 1], repeat=D)), dtype=np.float64)
    log_p = -model.free_energy(states).astype(np.float64)
    return states, np.exp(log_p - logsumexp(log_p))


def histogram(samples):
    index = (np.asarray(samples).astype(np.int64) << np.arange(D)[::-1]).sum(axis=1)
    return np.bincount(index, minlength=2 ** D)


def chi_square_p_value(samples, p):
    """p-value of the chi-square goodness of fit of the samples' histogram
    to p, states with an expected count below 5 pooled."""
    counts = histogram(samples)
    expected = p * len(samples)
    big = expected >= 5
    observed = np.append(counts[big], counts[~big].sum())
    expected = np.append(expected[big], expected[~big].sum())
    keep = expected > 0
    statistic = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    return stats.chi2.sf(statistic, keep.sum() - 1)


def total_variation(samples, p):
    return 0.5 * np.abs(histogram(samples) / len(samples) - p).sum()


def test_pt_mixes_where_gibbs_is_stuck():
    model = two_mode_model()
    _, p = exact_distribution(model)
    n_chains, n_replicas, sweeps = 400, 8, 50
    ones = np.ones((n_chains, D))
    # equal cost: every replica's sweep counts as one Gibbs step
    gibbs = model.gibbs(ones, k=n_replicas * sweeps)
    result = parallel_tempering(model, n_sweeps=sweeps, n_temperatures=n_replicas,
                                start=ones, random_state=1)
    tv_gibbs, tv_pt = total_variation(gibbs, p), total_variation(result.samples, p)
    # Gibbs stays in the all-on mode (half the mass missing: TV about 0.5)
    assert tv_gibbs > 0.4
    assert tv_pt < 0.15
    assert result.acceptance.shape == (n_replicas - 1,)
    assert np.all(result.acceptance > 0)


def test_pt_converges_to_the_exact_distribution():
    # chi-square goodness of fit over the states, pooled where the expected
    # count is below 5; false-alarm rate 1e-3 (a correct sampler fails one
    # seed in a thousand)
    model = two_mode_model(strength=3.0)
    _, p = exact_distribution(model)
    result = parallel_tempering(model, n_chains=3000, n_sweeps=200, n_temperatures=6,
                                random_state=5)
    assert chi_square_p_value(result.samples, p) > 1e-3


def test_pt_is_thread_count_invariant_and_seeded():
    model = two_mode_model()
    runs = []
    for n_jobs in (1, 2, 3):
        model.n_jobs = n_jobs
        runs.append(parallel_tempering(model, n_chains=50, n_sweeps=20, n_temperatures=5,
                                       random_state=3))
    for other in runs[1:]:
        np.testing.assert_array_equal(other.samples, runs[0].samples)
        np.testing.assert_array_equal(other.acceptance, runs[0].acceptance)
    different = parallel_tempering(model, n_chains=50, n_sweeps=20, n_temperatures=5,
                                   random_state=4)
    assert not np.array_equal(different.samples, runs[0].samples)


def test_auto_ladder_evens_out_the_swaps():
    model = two_mode_model(strength=3.0)
    fixed = parallel_tempering(model, n_chains=200, n_sweeps=200, n_temperatures=6,
                               random_state=2)
    auto = parallel_tempering(model, n_chains=200, n_sweeps=200, n_temperatures=6,
                              betas="auto", random_state=2)
    assert auto.betas[0] == 0 and auto.betas[-1] == 1 and np.all(np.diff(auto.betas) > 0)
    assert np.std(auto.acceptance) < np.std(fixed.acceptance)


def test_betas_are_checked():
    model = two_mode_model()
    for bad in ([0.5, 1.0], [0, 0.5], [0, 0.7, 0.3, 1], [[0, 1]]):
        with pytest.raises(ValueError, match="betas"):
            parallel_tempering(model, n_sweeps=2, betas=bad)


def test_gaussian_pt_matches_gibbs_moments():
    # a weakly coupled Gaussian model mixes under Gibbs too: both samplers
    # must give the same mean (4 sigma of the sampling error)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    model = GaussianBernoulliRBM(n_components=3, n_iter=2, random_state=0, n_jobs=1).fit(X)
    pt = parallel_tempering(model, n_chains=2000, n_sweeps=30, n_temperatures=4,
                            random_state=1).samples
    gibbs = model.gibbs(model.sample(2000, n_steps=1), k=120)   # on the data scale
    pt = model._unstandardise(pt)
    error = np.sqrt(pt.var(axis=0) / 2000 + gibbs.var(axis=0) / 2000)
    assert np.all(np.abs(pt.mean(axis=0) - gibbs.mean(axis=0)) < 4 * error + 1e-3)


def test_estimator_sample_method_pt():
    rng = np.random.default_rng(1)
    X = rng.random((60, D)) < 0.3
    first = BernoulliRBM(n_components=4, n_iter=2, random_state=0, n_jobs=1).fit(X)
    second = BernoulliRBM(n_components=4, n_iter=2, random_state=0, n_jobs=2).fit(X)
    a = first.sample(30, n_steps=5, method="pt", n_temperatures=3)
    np.testing.assert_array_equal(a, second.sample(30, n_steps=5, method="pt",
                                                   n_temperatures=3))
    assert a.shape == (30, D) and set(np.unique(a)) <= {0, 1}
    # each call draws afresh
    assert not np.array_equal(a, first.sample(30, n_steps=5, method="pt", n_temperatures=3))
    with pytest.raises(ValueError, match="method"):
        first.sample(3, method="tempered")
    # Gaussian: samples on the data's scale
    Xg = 100 + 10 * rng.normal(size=(300, 3))
    gauss = GaussianBernoulliRBM(n_components=2, n_iter=3, random_state=0, n_jobs=1).fit(Xg)
    samples = gauss.sample(500, n_steps=20, method="pt", n_temperatures=3)
    assert np.all(np.abs(samples.mean(axis=0) - 100) < 5)


def with_trajectory(model, strengths):
    """Checkpoints of the two-mode model at growing strengths (a stand-in
    for a training trajectory from weak to strong couplings)."""
    model.checkpoint_updates_ = list(range(len(strengths)))
    model.checkpoint_components_ = [np.full((1, D), s) for s in strengths]
    model.checkpoint_intercept_visible_ = [np.full(D, -s / 2) for s in strengths]
    model.checkpoint_intercept_hidden_ = [np.full(1, -s * D / 2) for s in strengths]
    model.n_updates_ = len(strengths) - 1
    return model


def test_trajectory_tempering_mixes_where_gibbs_is_stuck():
    from fastrbm.sampling import trajectory_tempering

    model = with_trajectory(two_mode_model(), [0, 1, 2, 3, 4, 5, 6, 7, 8])
    _, p = exact_distribution(model)
    ones = np.ones((400, D))
    result = trajectory_tempering(model, n_sweeps=50, start=ones, random_state=1)
    gibbs = model.gibbs(ones, k=9 * 50)
    assert total_variation(gibbs, p) > 0.4
    assert total_variation(result.samples, p) < 0.15
    np.testing.assert_array_equal(result.betas, np.arange(9))
    assert np.all(result.acceptance > 0)


def test_trajectory_tempering_converges_to_the_exact_distribution():
    # chi-square as in test_pt_converges_to_the_exact_distribution (false alarm 1e-3)
    from fastrbm.sampling import trajectory_tempering

    model = with_trajectory(two_mode_model(strength=3.0), [0, 1, 2, 3])
    _, p = exact_distribution(model)
    samples = trajectory_tempering(model, n_chains=3000, n_sweeps=200, random_state=6).samples
    assert chi_square_p_value(samples, p) > 1e-3


def test_fit_keeps_checkpoints_and_samples_from_them(tmp_path):
    from fastrbm import load_model, save_model

    rng = np.random.default_rng(2)
    X = rng.random((120, D)) < 0.3
    model = BernoulliRBM(n_components=4, n_iter=6, batch_size=10, random_state=0, n_jobs=1)
    model.fit(X, checkpoints=4)
    updates = model.checkpoint_updates_
    assert updates[0] == 0 and updates == sorted(set(updates)) and updates[-1] <= 72
    assert len(model.checkpoint_components_) == len(updates)
    np.testing.assert_array_equal(model.checkpoint_components_[-1] if updates[-1] == 72
                                  else model.components_, model.components_)
    first = model.sample(20, n_steps=5, method="trajectory")
    path = tmp_path / "m.npz"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.checkpoint_updates_ == updates
    again = loaded.sample(20, n_steps=5, method="trajectory")
    # the loaded model continues the sample-call counter: its first call is the second one
    assert again.shape == first.shape
    model.fit(X, checkpoints=[0, 12, 36])
    assert model.checkpoint_updates_ == [0, 12, 36]
    model.fit(X)
    assert not hasattr(model, "checkpoint_updates_")
    with pytest.raises(ValueError, match="checkpoints"):
        model.sample(5, n_steps=2, method="trajectory")
    with pytest.raises(ValueError, match="checkpoints"):
        model.fit(X, checkpoints="many")


def test_gaussian_trajectory_with_learned_sigma(tmp_path):
    from fastrbm import load_model, save_model

    rng = np.random.default_rng(3)
    X = 5 + 2 * rng.normal(size=(200, 4))
    model = GaussianBernoulliRBM(n_components=3, n_iter=4, sigma="learn", random_state=0,
                                 n_jobs=1).fit(X, checkpoints=3)
    assert len(model.checkpoint_log_var_) == len(model.checkpoint_updates_)
    samples = model.sample(300, n_steps=20, method="trajectory")
    assert samples.shape == (300, 4) and np.all(np.abs(samples.mean(axis=0) - 5) < 1)
    save_model(model, tmp_path / "g.npz")
    loaded = load_model(tmp_path / "g.npz")
    for a, b in zip(loaded.checkpoint_log_var_, model.checkpoint_log_var_):
        np.testing.assert_array_equal(a, b)


def test_checkpoints_need_an_in_memory_fit():
    da = pytest.importorskip("dask.array")
    X = da.from_array(np.random.default_rng(0).random((40, D)) < 0.5, chunks=20)
    with pytest.raises(ValueError, match="checkpoints"):
        BernoulliRBM(n_components=2, n_iter=1).fit(X, checkpoints=3)


def test_starts_are_read_as_the_kernels_read_data():
    # uint8 intensities are intensity / 255, as everywhere else
    model = two_mode_model(strength=3.0)
    ones8 = np.full((30, D), 255, dtype=np.uint8)
    a = parallel_tempering(model, n_sweeps=3, n_temperatures=3, start=ones8, random_state=0)
    b = parallel_tempering(model, n_sweeps=3, n_temperatures=3, start=np.ones((30, D)),
                           random_state=0)
    np.testing.assert_array_equal(a.samples, b.samples)
