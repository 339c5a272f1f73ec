"""GaussianBernoulliRBM: the Gaussian visible draw (engine vs reference and a
goodness-of-fit test), training kernels vs the NumPy reference, exact log Z
vs numerical integration, the estimator (standardisation, scikit-learn checks,
thread determinism, learning)."""
import numpy as np
import pytest
from scipy import integrate, stats
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastrbm import GaussianBernoulliRBM, _cpu, evaluation
from fastrbm import _reference as ref
from fastrbm.rbm import TrainConfig

DTYPES = [np.float32, np.float64]
KEY = np.array([0x1234ABCD, 0x0F0F0F0F], dtype=np.uint32)
# parameters after a few epochs agree to rounding; Gaussian visible values are
# O(1) (not in [0, 1]), so float32 gets a few ulp of O(1) numbers
ATOL = {np.float32: 1e-5, np.float64: 1e-12}
# false-alarm rate of each goodness-of-fit test (fixed key: the outcome is
# deterministic, alpha says how unlucky a correct sampler would have to be)
ALPHA = 1e-3


def real_data(n, D, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (n, D)) + rng.normal(0, 0.5, D)


def init_params(D, H, dtype, seed=5):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.1, (H, D)).astype(dtype), rng.normal(0, 0.1, D).astype(dtype),
            rng.normal(0, 0.1, H).astype(dtype))


# ------------------------------------------------------------ the Gaussian draw
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_cols", [1, 7, 64, 130])
def test_gaussian_sample_matches_reference(dtype, n_cols):
    rng = np.random.default_rng(0)
    act = rng.normal(0, 2, (9, n_cols)).astype(dtype)
    bias = rng.normal(0, 1, n_cols).astype(dtype)
    got = _cpu.gaussian_sample(act, bias, KEY, 11, 0, 3)
    assert got.dtype == dtype
    # same uniforms; the only rounding difference could come from libm vs
    # NumPy log/cos/sin in float64, invisible after rounding to float32 and
    # within a few ulp in float64
    np.testing.assert_allclose(got, ref.gaussian_sample(act, bias, KEY, 11, 0, 3),
                               rtol=0, atol=0 if dtype == np.float32 else 1e-14)
    assert not np.array_equal(got, _cpu.gaussian_sample(act, bias, KEY, 12, 0, 3))


def test_gaussian_sample_box_muller_layout():
    """z(2m), z(2m+1) are the cos/sin pair of the uniforms of columns 2m, 2m+1."""
    zero = np.zeros((3, 5))
    z = _cpu.gaussian_sample(zero, np.zeros(5), KEY, 4, 1, 2)
    u = _cpu.uniforms(KEY, np.arange(3), 6, 4, 1, 2, np.float64)
    r = np.sqrt(-2 * np.log(1 - u[:, 0::2]))
    expected = np.empty((3, 6))
    expected[:, 0::2] = r * np.cos(2 * np.pi * u[:, 1::2])
    expected[:, 1::2] = r * np.sin(2 * np.pi * u[:, 1::2])
    np.testing.assert_allclose(z, expected[:, :5], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gaussian_sample_goodness_of_fit(dtype):
    """KS test against N(0, 1) for the cos and the sin draws separately, and
    no correlation within a pair (each at false-alarm rate ALPHA)."""
    n, d = 200, 101     # odd: the last column is a lone cos draw
    z = _cpu.gaussian_sample(np.zeros((n, d), dtype), np.zeros(d, dtype), KEY, 0, 0, 1)
    z = z.astype(np.float64)
    cos_draws, sin_draws = z[:, 0::2], z[:, 1::2]
    for draws in (cos_draws, sin_draws, z):
        assert stats.kstest(draws.ravel(), "norm").pvalue > ALPHA
    pairs = stats.pearsonr(cos_draws[:, :-1].ravel(), sin_draws.ravel())
    assert pairs.pvalue > ALPHA
    # and the mean shift is exact
    shifted = _cpu.gaussian_sample(np.full((n, d), 3, dtype), np.ones(d, dtype), KEY, 0, 0, 1)
    np.testing.assert_allclose(shifted - 4, z, atol=1e-5 if dtype == np.float32 else 1e-12)


# --------------------------------------------------------------- training kernel
def init_log_var(D, dtype, seed=6):
    """Log-variances of s between about 0.5 and 2."""
    return np.random.default_rng(seed).normal(0, 0.5, D).astype(dtype)


def train(engine, X, dtype, *, method="cd", k=1, extras=None, H=13, batch_size=10, epochs=2,
          n_threads=1, gaussian=True, sigma=None):
    """``sigma``: None (s = 1), 'fixed' or 'learn' (s from init_log_var)."""
    n, D = X.shape
    W, vbias, hbias = init_params(D, H, dtype)
    chains = np.zeros((batch_size, H), dtype) if method == "pcd" else None
    extras = extras or {}
    log_var = None if sigma is None else init_log_var(D, dtype)
    cfg = TrainConfig(k=k, persistent=method == "pcd", learning_rate=0.01,
                              momentum=extras.get("momentum", 0.0),
                              weight_decay=extras.get("weight_decay", 0.0),
                              l1=extras.get("l1", 0.0), sparsity_target=0.1,
                              sparsity_cost=extras.get("sparsity_cost", 0.0),
                              gaussian=gaussian, learn_sigma=sigma == "learn")
    vel = ((np.zeros_like(W), np.zeros(D, dtype), np.zeros(H, dtype))
           if cfg.momentum > 0 else (None, None, None))
    activity = np.full(H, 0.1, dtype)
    ws = engine.make_workspace(D, H, batch_size, dtype)
    step = 0
    for epoch in range(epochs):
        order = np.random.default_rng(epoch).permutation(n).astype(np.intp)
        engine.cd_update(X, order, batch_size, W, vbias, hbias, chains, *vel, activity, ws,
                         cfg, KEY, step, n_threads,
                         **({} if log_var is None else {"log_var": log_var}))
        step += -(-n // batch_size)
    return {"W": W, "vbias": vbias, "hbias": hbias, "chains": chains, "log_var": log_var}


ALL_EXTRAS = dict(momentum=0.5, weight_decay=1e-3, l1=1e-4, sparsity_cost=0.5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ["cd", "pcd"])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("shape", [(45, 9), (25, 301)])   # one block; several, odd D
def test_cd_update_gaussian_matches_reference(dtype, method, k, shape):
    X = real_data(*shape).astype(dtype)
    extras = ALL_EXTRAS if k == 3 else None
    a = train(_cpu, X, dtype, method=method, k=k, extras=extras)
    b = train(ref, X, dtype, method=method, k=k, extras=extras)
    for name in a:
        if a[name] is None:
            continue
        assert a[name].dtype == dtype
        if name == "chains":
            assert np.array_equal(a[name], b[name])
        else:
            np.testing.assert_allclose(a[name], b[name], rtol=0, atol=ATOL[dtype], err_msg=name)
    # the flag matters: the Bernoulli kernel on the same data differs
    bern = train(_cpu, np.clip(X, 0, 1), dtype, method=method, k=k, extras=extras,
                 gaussian=False)
    gauss01 = train(_cpu, np.clip(X, 0, 1), dtype, method=method, k=k, extras=extras)
    assert not np.array_equal(bern["W"], gauss01["W"])


@pytest.mark.parametrize("sigma", [None, "learn"])
def test_fine_tiles_gaussian_match_reference_and_any_thread_count(fine_tiles, sigma):
    # many row, unit and gradient tiles (conftest.fine_tiles): the learned
    # log-variance step sums per-hidden-tile partial sums over column tiles
    X = real_data(40, 23).astype(np.float64)
    kw = dict(method="pcd", k=2, H=17, extras=ALL_EXTRAS, sigma=sigma)
    one = train(_cpu, X, np.float64, n_threads=1, **kw)
    reference = train(ref, X, np.float64, **kw)
    for n_threads in (2, 3):
        other = train(_cpu, X, np.float64, n_threads=n_threads, **kw)
        for name in one:
            if one[name] is not None:
                assert np.array_equal(one[name], other[name]), name
    for name in one:
        if one[name] is not None:
            np.testing.assert_allclose(one[name], reference[name], rtol=0,
                                       atol=ATOL[np.float64], err_msg=name)


def test_fit_thread_count_invariant_with_many_tiles():
    # automatic tiles: batch 200 gives 2 row tiles, 260 hidden units 2 unit
    # tiles (2 partial log-variance sums), 300 visible units 2 unit tiles
    from fastrbm import _layout
    tiles = _layout.train_tiles(300, 260, 200)
    assert tiles["rows"] < 200 and tiles["hidden_units"] < 260
    X = real_data(500, 300, seed=4).astype(np.float32)
    kw = dict(n_components=260, batch_size=200, n_iter=2, learning_rate=0.001, momentum=0.5,
              sigma="learn", random_state=0)
    fits = [GaussianBernoulliRBM(n_jobs=n, **kw).fit(X) for n in (1, 2, 3)]
    for other in fits[1:]:
        for attr in ("components_", "intercept_visible_", "intercept_hidden_", "sigma_"):
            assert np.array_equal(getattr(fits[0], attr), getattr(other, attr)), attr


@pytest.mark.parametrize("sigma", [None, "learn"])
@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_cd_update_gaussian_thread_count_invariant(method, sigma):
    # H = 300: several blocks of hidden units, so the log-variance step adds
    # per-block partial sums (in block order, whatever thread made them)
    X = real_data(60, 301).astype(np.float32)
    one = train(_cpu, X, np.float32, method=method, k=2, n_threads=1, H=300, sigma=sigma,
                extras=ALL_EXTRAS)
    two = train(_cpu, X, np.float32, method=method, k=2, n_threads=2, H=300, sigma=sigma,
                extras=ALL_EXTRAS)
    for name in one:
        if one[name] is not None:
            assert np.array_equal(one[name], two[name]), name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ["cd", "pcd"])
@pytest.mark.parametrize("k,extras", [(1, None), (3, ALL_EXTRAS)])
@pytest.mark.parametrize("shape,H", [((45, 9), 13), ((25, 301), 300)])
@pytest.mark.parametrize("sigma", ["fixed", "learn"])
def test_cd_update_sigma_matches_reference(dtype, method, k, extras, shape, H, sigma):
    """Per-feature s (fixed or learned through log s^2): the kernel's u = v / s
    formulation against the reference's direct v-space formulas."""
    X = (real_data(*shape) * np.linspace(0.3, 3, shape[1])).astype(dtype)
    a = train(_cpu, X, dtype, method=method, k=k, extras=extras, H=H, sigma=sigma)
    b = train(ref, X, dtype, method=method, k=k, extras=extras, H=H, sigma=sigma)
    for name in a:
        if a[name] is None:
            continue
        assert a[name].dtype == dtype
        if name == "chains":
            assert np.array_equal(a[name], b[name])
        else:
            np.testing.assert_allclose(a[name], b[name], rtol=0, atol=ATOL[dtype], err_msg=name)
    start = init_log_var(shape[1], dtype)
    if sigma == "learn":
        # the log-variances moved by far more than the tolerance
        assert np.max(np.abs(a["log_var"] - start)) > 1e3 * ATOL[dtype]
        # and s matters: the unit-variance run from the same start differs
        unit = train(_cpu, X, dtype, method=method, k=k, extras=extras, H=H)
        assert np.max(np.abs(unit["W"] - a["W"])) > 1e3 * ATOL[dtype]
    else:
        assert np.array_equal(a["log_var"], start)


def test_cd_update_sigma_argument_checks():
    X = real_data(20, 5)
    W, vb, hb = init_params(5, 3, np.float64)
    ws = _cpu.make_workspace(5, 3, 10, np.float64)
    order = np.arange(20, dtype=np.intp)
    args = (X, order, 10, W, vb, hb, None, None, None, None, np.full(3, 0.1), ws)
    base = dict(k=1, persistent=False, learning_rate=0.01, momentum=0.0, weight_decay=0.0,
                l1=0.0, sparsity_target=0.1, sparsity_cost=0.0)
    for engine in (_cpu, ref):
        with pytest.raises(ValueError, match="Gaussian"):
            engine.cd_update(*args, TrainConfig(**base), KEY, 0, 1,
                             log_var=np.zeros(5))
        with pytest.raises(ValueError, match="log_var"):
            engine.cd_update(*args, TrainConfig(**base, gaussian=True,
                                                        learn_sigma=True), KEY, 0, 1)


# ------------------------------------------------------- row kernels (inference)
@pytest.mark.parametrize("dtype", DTYPES)
def test_row_kernels_gaussian_match_reference(dtype):
    X = real_data(70, 11).astype(dtype)
    W, vb, hb = init_params(11, 6, dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    fe = _cpu.free_energy(X, W, vb, hb, 2, gaussian=True)
    x64 = X.astype(np.float64)
    direct = (((x64 - vb) ** 2).sum(1) / 2
              - np.logaddexp(0, x64 @ W.T.astype(np.float64) + hb).sum(1))
    np.testing.assert_allclose(fe, direct, **tol)
    np.testing.assert_allclose(fe, ref.free_energy(X, W, vb, hb, 1, gaussian=True), **tol)
    hidden = _cpu.hidden_proba(X, W, hb, 1)
    mean = _cpu.visible_proba(hidden, W, vb, 2, gaussian=True)
    np.testing.assert_allclose(mean, hidden @ W + vb, **tol)
    np.testing.assert_allclose(mean, ref.visible_proba(hidden, W, vb, 1, gaussian=True), **tol)
    for k in (1, 3):
        g = _cpu.gibbs(X, W, vb, hb, k, KEY, 5, 1, 1, gaussian=True)
        np.testing.assert_allclose(g, ref.gibbs(X, W, vb, hb, k, KEY, 5, 1, 1, gaussian=True),
                                   **tol)
        assert np.array_equal(g, _cpu.gibbs(X, W, vb, hb, k, KEY, 5, 1, 2, gaussian=True))
    with pytest.raises(ValueError, match="flip"):
        _cpu.free_energy(X, W, vb, hb, 1, flip=np.zeros(70, np.intp), gaussian=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_row_kernels_sigma_match_reference(dtype):
    """free energy, P(h | v), E[v | h] and Gibbs chains with per-feature s."""
    X = (real_data(70, 11) * np.linspace(0.2, 4, 11)).astype(dtype)
    W, vb, hb = init_params(11, 6, dtype)
    W *= 10
    sigma = np.exp(0.5 * init_log_var(11, np.float64)).astype(dtype)
    s64 = sigma.astype(np.float64)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    fe = _cpu.free_energy(X, W, vb, hb, 2, gaussian=True, sigma=sigma)
    x64, W64 = X.astype(np.float64), W.astype(np.float64)
    direct = ((((x64 - vb) / s64) ** 2).sum(1) / 2
              - np.logaddexp(0, (x64 / s64) @ W64.T + hb).sum(1))
    np.testing.assert_allclose(fe, direct, **tol)
    np.testing.assert_allclose(fe, ref.free_energy(X, W, vb, hb, 1, gaussian=True, sigma=sigma),
                               **tol)
    assert np.max(np.abs(fe - _cpu.free_energy(X, W, vb, hb, 2, gaussian=True))) > 1
    hidden = _cpu.hidden_proba(X, W, hb, 2, sigma=sigma)
    np.testing.assert_allclose(hidden, 1 / (1 + np.exp(-((x64 / s64) @ W64.T + hb))), **tol)
    np.testing.assert_allclose(hidden, ref.hidden_proba(X, W, hb, 1, sigma=sigma), **tol)
    mean = _cpu.visible_proba(hidden, W, vb, 2, gaussian=True, sigma=sigma)
    np.testing.assert_allclose(mean, vb + s64 * (hidden @ W64), **tol)
    np.testing.assert_allclose(mean, ref.visible_proba(hidden, W, vb, 1, gaussian=True,
                                                       sigma=sigma), **tol)
    for k in (1, 3):
        g = _cpu.gibbs(X, W, vb, hb, k, KEY, 5, 1, 1, gaussian=True, sigma=sigma)
        np.testing.assert_allclose(g, ref.gibbs(X, W, vb, hb, k, KEY, 5, 1, 1, gaussian=True,
                                                sigma=sigma), **tol)
        assert np.array_equal(g, _cpu.gibbs(X, W, vb, hb, k, KEY, 5, 1, 2, gaussian=True,
                                              sigma=sigma))
    for bad in (np.zeros(11), np.ones(10), np.full(11, np.nan)):
        with pytest.raises(ValueError, match="sigma"):
            _cpu.hidden_proba(X, W, hb, 1, sigma=bad)
    with pytest.raises(ValueError, match="Gaussian"):
        _cpu.free_energy(X, W, vb, hb, 1, sigma=sigma)


def test_gibbs_one_step_sigma_conditional():
    """With s: v' | h ~ N(b + s W^T h, s^2), so E[v'] = b + s (W^T P(h | v))
    and the covariance is diag(s) (W^T diag(p(1-p)) W + I) diag(s)."""
    D, H, n = 3, 4, 4000
    W, vb, hb = init_params(D, H, np.float64, seed=2)
    W *= 10
    sigma = np.array([0.1, 1.0, 5.0])
    v0 = np.tile(np.array([[0.05, -1.0, 10.0]]), (n, 1))
    v1 = _cpu.gibbs(v0, W, vb, hb, 1, KEY, 0, 1, 1, gaussian=True, sigma=sigma)
    p = _cpu.hidden_proba(v0[:1], W, hb, 1, sigma=sigma)[0]
    expected_mean = vb + sigma * (p @ W)
    cov = np.diag(sigma) @ (W.T @ np.diag(p * (1 - p)) @ W + np.eye(D)) @ np.diag(sigma)
    diff = v1.mean(0) - expected_mean
    stat = n * diff @ np.linalg.solve(cov, diff)
    assert stats.chi2.sf(stat, D) > ALPHA
    # per-feature spread: sample variances against the exact ones (chi2, n - 1 dof)
    for i in range(D):
        ratio = (n - 1) * v1[:, i].var(ddof=1) / cov[i, i]
        assert ALPHA / 2 < stats.chi2.cdf(ratio, n - 1) < 1 - ALPHA / 2


def test_gibbs_one_step_gaussian_conditional():
    """One Gibbs step from a fixed v: v' - E[v' | h] is N(0, 1) given h, and
    E[v'] = b + W^T P(h | v) (exact: the mean of a Bernoulli mixture)."""
    D, H, n = 3, 4, 4000
    W, vb, hb = init_params(D, H, np.float64, seed=2)
    W *= 10
    v0 = np.tile(np.array([[0.5, -1.0, 2.0]]), (n, 1))
    v1 = _cpu.gibbs(v0, W, vb, hb, 1, KEY, 0, 1, 1, gaussian=True)
    p = _cpu.hidden_proba(v0[:1], W, hb, 1)[0]
    expected_mean = vb + p @ W
    cov = W.T @ np.diag(p * (1 - p)) @ W + np.eye(D)
    # Hotelling-style check of the mean with the exact covariance (chi2, D dof)
    diff = v1.mean(0) - expected_mean
    stat = n * diff @ np.linalg.solve(cov, diff)
    assert stats.chi2.sf(stat, D) > ALPHA


# ---------------------------------------------------------------- exact log Z
def set_params(model, W, b, c):
    model.components_, model.intercept_visible_, model.intercept_hidden_ = W, b, c


def numeric_log_z(W, b, c, s=None):
    """log of the integral of exp(-F(v)) over R^D by adaptive quadrature (D = 1, 2),
    F(v) = sum_i (v_i - b_i)^2 / (2 s_i^2) - sum_j softplus(c_j + W_j.(v / s))."""
    D = W.shape[1]
    s = np.ones(D) if s is None else s

    def unnormalised(*v):
        v = np.array(v)
        return np.exp(-(((v - b) / s) ** 2).sum() / 2 + np.logaddexp(0, c + W @ (v / s)).sum())

    lim = (12 + np.abs(b).max() + np.abs(W).sum()) * s.max()
    if D == 1:
        value, err = integrate.quad(unnormalised, -lim, lim, epsabs=0, epsrel=1e-11,
                                    limit=200)
    else:
        value, err = integrate.dblquad(lambda y, x: unnormalised(x, y), -lim, lim, -lim, lim,
                                       epsabs=0, epsrel=1e-10)
    return np.log(value)


@pytest.mark.parametrize("D,H,seed", [(1, 1, 0), (1, 4, 1), (2, 3, 2), (2, 5, 3)])
def test_log_partition_exact_gaussian_equals_integration(D, H, seed):
    rng = np.random.default_rng(seed)
    model = GaussianBernoulliRBM(n_components=H, n_iter=0, random_state=0).fit(
        rng.normal(size=(5, D)))
    W, b, c = rng.normal(0, 1.5, (H, D)), rng.normal(0, 1, D), rng.normal(0, 1, H)
    set_params(model, W, b, c)
    got = evaluation.log_partition_exact(model)
    assert got == pytest.approx(numeric_log_z(W, b, c), abs=1e-8)


@pytest.mark.parametrize("D,H,seed", [(1, 1, 0), (1, 4, 1), (2, 3, 2), (2, 5, 3)])
def test_log_partition_exact_sigma_equals_integration(D, H, seed):
    """Non-unit s (one feature narrow, one wide), assigned as sigma_."""
    rng = np.random.default_rng(seed)
    model = GaussianBernoulliRBM(n_components=H, n_iter=0, random_state=0).fit(
        rng.normal(size=(5, D)))
    W, b, c = rng.normal(0, 1.5, (H, D)), rng.normal(0, 1, D), rng.normal(0, 1, H)
    s = np.array([0.3, 2.5])[:D]
    set_params(model, W, b, c)
    model.sigma_ = s
    np.testing.assert_allclose(model.sigma_, s, rtol=1e-15)
    got = evaluation.log_partition_exact(model)
    expected = numeric_log_z(W, b, c, s)
    assert got == pytest.approx(expected, abs=1e-8)
    # s matters (by more than log s alone: it also scales the coupling)
    assert abs(got - numeric_log_z(W, b, c)) > 0.1


def test_log_likelihood_gaussian_normalised_on_original_scale():
    """exp(log p(x)) integrates to 1 over x on the data's own scale."""
    rng = np.random.default_rng(4)
    X = rng.normal(5, 3, (50, 1))
    model = GaussianBernoulliRBM(n_components=3, n_iter=3, random_state=0,
                                 dtype=np.float64).fit(X)
    log_z = evaluation.log_partition_exact(model)
    lo, hi = model.mean_[0] - 15 * model.scale_[0], model.mean_[0] + 15 * model.scale_[0]
    xs = np.linspace(lo, hi, 20001)
    density = np.exp(evaluation.log_likelihood(model, xs[:, None], log_z=log_z))
    assert integrate.simpson(density, x=xs) == pytest.approx(1, abs=1e-8)
    # score_samples is log p(x) up to the constant log Z
    np.testing.assert_allclose(model.score_samples(X) - log_z,
                               evaluation.log_likelihood(model, X, log_z=log_z), rtol=1e-12)


def test_log_partition_exact_gaussian_too_many_hidden():
    model = GaussianBernoulliRBM(n_components=26, n_iter=0).fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="hidden layer"):
        evaluation.log_partition_exact(model)


# ------------------------------------------------------------------- estimator
@parametrize_with_checks([GaussianBernoulliRBM(n_components=8, n_iter=5, batch_size=10),
                          GaussianBernoulliRBM(n_components=8, n_iter=5, batch_size=10,
                                               sigma="learn")])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def mixture(n=400, D=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (3, D))
    return centres[rng.integers(0, 3, n)] + rng.normal(0, 0.5, (n, D)) + 100


def test_standardisation_and_attributes():
    X = mixture()
    model = GaussianBernoulliRBM(n_components=6, n_iter=2, random_state=0).fit(X)
    np.testing.assert_allclose(model.mean_, X.mean(0))
    np.testing.assert_allclose(model.scale_, X.std(0))
    assert np.array_equal(model.sigma_, np.ones(8))
    assert model.components_.dtype == np.float64
    H = model.transform(X[:5])
    assert H.shape == (5, 6) and np.all((H > 0) & (H < 1))
    back = model.inverse_transform(H)
    np.testing.assert_allclose(back, (H @ model.components_ + model.intercept_visible_)
                               * model.scale_ + model.mean_)
    np.testing.assert_allclose(model.reconstruct(X[:5]), back)
    # samples come back on the data's scale
    s = model.sample(200, n_steps=20)
    assert s.shape == (200, 8) and abs(s.mean() - X.mean()) < 3 * X.std()
    # constant features are only centred
    Xc = X.copy()
    Xc[:, 0] = 7.0
    assert GaussianBernoulliRBM(n_components=2, n_iter=1).fit(Xc).scale_[0] == 1


def test_any_finite_real_accepted_nan_inf_rejected():
    X = mixture(60)
    model = GaussianBernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(X)
    model.transform(-1e6 * np.ones((2, 8)))
    for bad in (np.nan, np.inf):
        Y = X.copy()
        Y[3, 2] = bad
        with pytest.raises(ValueError, match="NaN|infinity"):
            model.transform(Y)
        with pytest.raises(ValueError, match="NaN|infinity"):
            GaussianBernoulliRBM(n_iter=1).fit(Y)
    with pytest.raises(ValueError, match="pseudo_likelihood"):
        GaussianBernoulliRBM(early_stopping="pseudo_likelihood").fit(X)


def test_uint8_is_raw_numbers():
    raw = np.random.default_rng(1).integers(0, 256, (40, 5)).astype(np.uint8)
    a = GaussianBernoulliRBM(n_components=3, n_iter=2, random_state=0).fit(raw)
    b = GaussianBernoulliRBM(n_components=3, n_iter=2, random_state=0).fit(
        raw.astype(np.float32))
    np.testing.assert_allclose(a.mean_, raw.mean(0))
    assert a.components_.dtype == np.float32
    assert np.array_equal(a.components_, b.components_)


@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_estimator_n_jobs_invariant(method):
    X = mixture(300, 70).astype(np.float32)
    kw = dict(n_components=20, n_iter=2, batch_size=16, method=method, k=2, random_state=3)
    m1 = GaussianBernoulliRBM(n_jobs=1, **kw).fit(X)
    m2 = GaussianBernoulliRBM(n_jobs=2, **kw).fit(X)
    for attr in ("components_", "intercept_visible_", "intercept_hidden_", "h_samples_"):
        assert np.array_equal(getattr(m1, attr), getattr(m2, attr)), attr
    assert m1.components_.dtype == np.float32
    assert np.array_equal(m1.gibbs(X[:50], k=2), m2.gibbs(X[:50], k=2))
    assert np.array_equal(m1.free_energy(X), m2.free_energy(X))


def test_learning_reduces_reconstruction_error_and_raises_likelihood():
    X = mixture(600, 8, seed=2)
    model = GaussianBernoulliRBM(n_components=10, n_iter=15, learning_rate=0.01, momentum=0.5,
                                 random_state=0, dtype=np.float64).fit(X)
    errors = [entry["reconstruction_error"] for entry in model.history_]
    assert errors[-1] < 0.5 * errors[0]
    untrained = GaussianBernoulliRBM(n_components=10, n_iter=0, random_state=0,
                                     dtype=np.float64).fit(X)
    ll = [np.mean(evaluation.log_likelihood(m, X, log_z=evaluation.log_partition_exact(m)))
          for m in (untrained, model)]
    assert ll[1] > ll[0] + 1


# ---------------------------------------------------------------- learned sigma
def gb_rbm_samples(n, true_s, seed=0):
    """Exact samples of a Gaussian-Bernoulli RBM with 2 hidden units and
    per-feature noise s: W has orthogonal rows of norm 6 and b / s = -(sum of
    the rows) / 2, which makes ||b / s + W^T h|| the same for all four hidden
    states, so p(h) is uniform (c = 0) and v = 10 + s (b / s + W^T h + z)."""
    rng = np.random.default_rng(seed)
    D = len(true_s)
    Q, _ = np.linalg.qr(rng.normal(size=(D, 2)))
    W = 6 * Q.T
    h = rng.integers(0, 2, (n, 2)).astype(np.float64)
    return 10 + true_s * (-W.sum(0) / 2 + h @ W + rng.standard_normal((n, D)))


# feature noise over two orders of magnitude on the original scale
TRUE_S = np.array([0.05, 0.2, 0.5, 1.0, 2.0, 5.0])
# learned s within 10% of the truth (measured: within 3-7% at 30 and at 150
# epochs; the RBM has more hidden units than the generator, so CD's bias and
# some overfitting keep it a little low)
SIGMA_RTOL = 0.10


@pytest.mark.parametrize("dtype", DTYPES)
def test_learned_sigma_recovers_feature_noise(dtype):
    X = gb_rbm_samples(2000, TRUE_S).astype(dtype)
    model = GaussianBernoulliRBM(n_components=8, sigma="learn", n_iter=30, learning_rate=0.01,
                                 batch_size=20, momentum=0.5, random_state=0).fit(X)
    assert model.sigma_.dtype == dtype
    recovered = model.sigma_.astype(np.float64) * model.scale_
    np.testing.assert_allclose(recovered, TRUE_S, rtol=SIGMA_RTOL)
    # not a property of the data alone: the marginal spread (what s = 1 on the
    # standardised scale says) misses the noise level by 13% to 150% here
    fixed = GaussianBernoulliRBM(n_components=8, n_iter=2, random_state=0).fit(X)
    assert np.all(np.abs(fixed.sigma_ * fixed.scale_ / TRUE_S - 1) > SIGMA_RTOL)
    # and it is a better model: higher likelihood than the same RBM with s = 1
    # (by 0.8 nats per row, measured)
    same = GaussianBernoulliRBM(n_components=8, n_iter=30, learning_rate=0.01, batch_size=20,
                                momentum=0.5, random_state=0, dtype=np.float64).fit(X)
    ll = [np.mean(evaluation.log_likelihood(m, X, log_z=evaluation.log_partition_exact(m)))
          for m in (model, same)]
    assert ll[0] > ll[1] + 0.5


def test_learned_sigma_estimator_plumbing():
    """transform, reconstruct, inverse_transform, sample, free energy and
    score_samples use s; determinism over n_jobs; a file round trip keeps s."""
    X = gb_rbm_samples(300, TRUE_S, seed=1)
    kw = dict(n_components=6, sigma="learn", n_iter=10, learning_rate=0.05, momentum=0.5,
              batch_size=16, random_state=2, method="pcd", k=2)
    m1 = GaussianBernoulliRBM(n_jobs=1, **kw).fit(X)
    m2 = GaussianBernoulliRBM(n_jobs=2, **kw).fit(X)
    assert np.array_equal(m1.sigma_, m2.sigma_) and np.array_equal(m1.components_,
                                                                   m2.components_)
    s = m1.sigma_
    assert np.min(s) < 0.9
    v = (X - m1.mean_) / m1.scale_
    W, b, c = m1.components_, m1.intercept_visible_, m1.intercept_hidden_
    H = m1.transform(X)
    np.testing.assert_allclose(H, 1 / (1 + np.exp(-((v / s) @ W.T + c))), rtol=1e-10)
    back = m1.inverse_transform(H)
    np.testing.assert_allclose(back, (b + s * (H @ W)) * m1.scale_ + m1.mean_, rtol=1e-10)
    np.testing.assert_allclose(m1.reconstruct(X), back)
    F = (((v - b) / s) ** 2).sum(1) / 2 - np.logaddexp(0, (v / s) @ W.T + c).sum(1)
    np.testing.assert_allclose(m1.free_energy(X), F, rtol=1e-10)
    np.testing.assert_allclose(m1.score_samples(X), -F - np.log(m1.scale_).sum(), rtol=1e-10)
    assert np.array_equal(m1.gibbs(X[:20], k=2), m2.gibbs(X[:20], k=2))
    samples = m1.sample(500, n_steps=50)
    # the model's samples have about the data's per-feature spread (factor 1.5)
    ratio = samples.std(0) / X.std(0)
    assert np.all((ratio > 1 / 1.5) & (ratio < 1.5)), ratio

    from fastrbm import load_model, save_model
    import tempfile
    import os
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_model(save_model(m1, os.path.join(tmp, "g.npz")))
    assert np.array_equal(loaded.sigma_, m1.sigma_)
    m1.partial_fit(X)
    loaded.partial_fit(X)     # training (of s too) resumes identically
    assert np.array_equal(loaded.sigma_, m1.sigma_)
    assert np.array_equal(loaded.components_, m1.components_)
    # sigma='fixed' keeps a learned (or assigned) s as it is
    m1.set_params(sigma="fixed").partial_fit(X)
    assert np.array_equal(m1.sigma_, loaded.sigma_)
    assert not np.array_equal(m1.components_, loaded.components_)
    with pytest.raises(ValueError, match="sigma"):
        GaussianBernoulliRBM(sigma=2.0).fit(X)
    with pytest.raises(ValueError, match="sigma_"):
        m1.sigma_ = -np.ones(6)


def test_learned_sigma_ais_and_normalisation():
    """AIS brackets exact log Z for a model with learned s, and exp(log p(x))
    integrates to 1 on the original scale."""
    X = gb_rbm_samples(2000, TRUE_S, seed=3)
    model = GaussianBernoulliRBM(n_components=8, sigma="learn", n_iter=30, learning_rate=0.01,
                                 batch_size=20, momentum=0.5, random_state=0,
                                 dtype=np.float64).fit(X)
    assert np.min(model.sigma_) < 0.5
    exact = evaluation.log_partition_exact(model)
    result = evaluation.log_partition_ais(model, n_chains=100, betas=3000, random_state=0)
    assert abs(result.log_z - exact) < 0.1, (result.log_z, exact)
    assert result.log_z_low <= exact <= result.log_z_high
    one = GaussianBernoulliRBM(n_components=3, n_iter=5, random_state=0,
                               dtype=np.float64).fit(X[:, :1])
    one.sigma_ = [0.6]
    log_z = evaluation.log_partition_exact(one)
    lo, hi = one.mean_[0] - 15 * one.scale_[0], one.mean_[0] + 15 * one.scale_[0]
    xs = np.linspace(lo, hi, 20001)
    density = np.exp(evaluation.log_likelihood(one, xs[:, None], log_z=log_z))
    assert integrate.simpson(density, x=xs) == pytest.approx(1, abs=1e-8)


# ------------------------------------------------------------ model files, CLI
def test_model_file_round_trip(tmp_path):
    from fastrbm import load_model, save_model

    X = mixture(80, 5)
    model = GaussianBernoulliRBM(n_components=4, n_iter=2, momentum=0.5,
                                 random_state=0).fit(X)
    loaded = load_model(save_model(model, tmp_path / "g.npz"))
    assert type(loaded) is GaussianBernoulliRBM
    for attr in ("mean_", "scale_", "sigma_", "components_"):
        assert np.array_equal(getattr(model, attr), getattr(loaded, attr)), attr
    assert np.array_equal(model.gibbs(X, k=2), loaded.gibbs(X, k=2))
    assert np.array_equal(model.reconstruct(X), loaded.reconstruct(X))
    model.partial_fit(X)
    loaded.partial_fit(X)      # training resumes identically (key, step, momentum)
    assert np.array_equal(model.components_, loaded.components_)


def test_cli_trains_gaussian_rbm(tmp_path, capsys):
    import json

    from fastrbm import cli, load_model

    assert cli.main(["train", "--model", "gaussian-rbm", "--n-iter", "2", "--n-components",
                     "8", "--no-plots", "--quiet", "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["model"] == "GaussianBernoulliRBM"
    assert metrics["params"]["learning_rate"] == cli.GAUSSIAN_LEARNING_RATE
    assert np.isfinite(metrics["train"]["reconstruction_error"])
    assert "unnormalised_log_density" in metrics["train"]
    assert type(load_model(tmp_path / "model.npz")) is GaussianBernoulliRBM


# ------------------------------------------------------------------------ AIS
@pytest.mark.parametrize("dtype", DTYPES)
def test_ais_gaussian_kernel_matches_reference_and_threads(dtype):
    rng = np.random.default_rng(5)
    D, H, n = 13, 9, 37
    W = rng.normal(0, 0.5, (H, D)).astype(dtype)
    b, c, base = (rng.normal(0, 1, m).astype(dtype) for m in (D, H, D))
    betas = np.linspace(0, 1, 40)
    one = _cpu.ais_log_weights(W, b, c, base, betas, n, KEY, 1, gaussian=True)
    assert np.array_equal(one, _cpu.ais_log_weights(W, b, c, base, betas, n, KEY, 2,
                                                      gaussian=True))
    expected = ref.ais_log_weights(W, b, c, base, betas, n, KEY, gaussian=True)
    np.testing.assert_allclose(one, expected, rtol=0, atol=1e-10 if dtype == np.float64 else 1e-4)
    assert not np.array_equal(one, _cpu.ais_log_weights(W, b, c, base, betas, n, KEY, 1))


def test_ais_gaussian_one_temperature_is_importance_sampling():
    """betas (0, 1): the weight is log p*_1(v) - log p*_0(v) at the base draw
    v = b_A + z (stream 3, step 0, phase 1), p*_0 = N(b_A, I) x 2^H unnormalised."""
    rng = np.random.default_rng(2)
    D, H, n = 5, 4, 6
    W, b, c = rng.normal(0, 1, (H, D)), rng.normal(0, 1, D), rng.normal(0, 1, H)
    base = np.linspace(-1, 1, D)
    v = base + ref.standard_normals(KEY, np.arange(n), D, 0, ref.STREAM_AIS, 1, np.float64)
    log_p1 = -((v - b) ** 2).sum(1) / 2 + np.logaddexp(0, v @ W.T + c).sum(1)
    log_p0 = -((v - base) ** 2).sum(1) / 2 + H * np.log(2)
    constant = -(b @ b - base @ base) / 2          # left to the caller
    got = _cpu.ais_log_weights(W, b, c, base, np.array([0.0, 1.0]), n, KEY, 1, gaussian=True)
    np.testing.assert_allclose(got + constant, log_p1 - log_p0, atol=1e-12)


def test_ais_gaussian_brackets_exact_log_z():
    """AIS on fitted Gaussian RBMs: within 0.1 nats of exact log Z and the
    +-3 s.e. bracket contains it (fixed seeds: deterministic)."""
    for seed, (D, H) in enumerate([(6, 8), (10, 12)]):
        X = mixture(300, D, seed=seed)
        model = GaussianBernoulliRBM(n_components=H, n_iter=10, momentum=0.5,
                                     random_state=seed, dtype=np.float64).fit(X)
        exact = evaluation.log_partition_exact(model)
        result = evaluation.log_partition_ais(model, n_chains=100, betas=3000,
                                              random_state=seed)
        assert abs(result.log_z - exact) < 0.1, (result.log_z, exact)
        assert result.log_z_low <= exact <= result.log_z_high


def test_ais_monitoring_in_fit_matches_evaluation():
    """history_'s AIS log-likelihood is that of the training rows on the
    original scale (the monitor rows are standardised once, not twice)."""
    X = mixture(64, 6)
    model = GaussianBernoulliRBM(n_components=8, n_iter=2, ais_every=2, random_state=0,
                                 dtype=np.float64).fit(X)
    entry = model.history_[-1]
    exact = evaluation.log_partition_exact(model)
    assert abs(entry["log_z"] - exact) < 0.5
    full = np.mean(evaluation.log_likelihood(model, X, log_z=entry["log_z"]))
    # the monitor subset holds all 64 rows (at least 64 are used)
    assert entry["log_likelihood"] == pytest.approx(full, rel=1e-9)
    GaussianBernoulliRBM(n_components=4, n_iter=2, ais_every=1, random_state=0,
                         early_stopping="log_likelihood").fit(X)


def test_simd_and_scalar_paths_give_identical_gaussian_training():
    X = real_data(40, 70).astype(np.float32)
    previous = _cpu.set_simd(True)
    try:
        fast = train(_cpu, X, np.float32, method="pcd", k=2)
        _cpu.set_simd(False)
        slow = train(_cpu, X, np.float32, method="pcd", k=2)
    finally:
        _cpu.set_simd(previous)
    for name in fast:
        assert np.array_equal(fast[name], slow[name]), name
