"""The scikit-learn-facing behaviour of fastrbm.BernoulliRBM."""
import inspect
import itertools
import pickle

import numpy as np
import pytest
from scipy.special import expit
from sklearn.base import clone
from sklearn.neural_network import BernoulliRBM as SkBernoulliRBM

import fastrbm
from fastrbm import _reference as ref
from fastrbm.rbm import TrainConfig


def BernoulliRBM(*args, **kwargs):
    """fastrbm.BernoulliRBM with one OpenMP thread unless asked otherwise.

    Results do not depend on n_jobs (test_engine checks it bit for bit), and
    on a shared, busy 2-core machine two OpenMP threads can wait on each
    other at every minibatch barrier.
    """
    kwargs.setdefault("n_jobs", 1)
    return fastrbm.BernoulliRBM(*args, **kwargs)


def prototypes_data(n=400, D=36, n_protos=6, noise=0.05, seed=0):
    """Rows are noisy copies (each bit flipped with prob. `noise`) of a few random prototypes."""
    rng = np.random.default_rng(seed)
    protos = rng.random((n_protos, D)) < 0.5
    X = protos[rng.integers(0, n_protos, n)] ^ (rng.random((n, D)) < noise)
    return X.astype(np.float64)


def bars_and_stripes(side=4):
    """All 2^(side+1) - 2 distinct bars-and-stripes images of side x side pixels."""
    rows = []
    for bits in itertools.product([0, 1], repeat=side):
        img = np.repeat(np.array(bits)[:, None], side, axis=1)
        rows.extend([img.ravel(), img.T.ravel()])
    return np.unique(np.array(rows, dtype=np.float64), axis=0)


def exact_mean_log_likelihood(model, X):
    """Mean log p(v) over X, with log Z summed exactly over all hidden states (NumPy)."""
    W = np.asarray(model.components_, np.float64)
    b = np.asarray(model.intercept_visible_, np.float64)
    c = np.asarray(model.intercept_hidden_, np.float64)
    Hs = np.array(list(itertools.product([0, 1], repeat=W.shape[0])), dtype=np.float64)
    log_z = np.logaddexp.reduce(Hs @ c + np.logaddexp(0, Hs @ W + b).sum(axis=1))
    free_energy = -(X @ b) - np.logaddexp(0, X @ W.T + c).sum(axis=1)
    return float(np.mean(-free_energy - log_z))


# ------------------------------------------------------------- API surface


def test_constructor_is_a_superset_of_sklearn():
    ours = inspect.signature(fastrbm.BernoulliRBM).parameters
    theirs = inspect.signature(SkBernoulliRBM).parameters
    for name, param in theirs.items():
        assert name in ours, name
        # same defaults and kinds, so switching the import changes nothing
        assert ours[name].default == param.default, name
        assert ours[name].kind == param.kind, name


def test_fitted_attributes():
    X = prototypes_data(n=57, D=20)
    model = BernoulliRBM(n_components=7, batch_size=10, n_iter=3, random_state=0).fit(X)
    assert model.components_.shape == (7, 20)
    assert model.intercept_hidden_.shape == (7,)
    assert model.intercept_visible_.shape == (20,)
    assert model.h_samples_.shape == (10, 7)
    assert set(np.unique(model.h_samples_)) <= {0, 1}
    assert model.n_features_in_ == 20
    assert isinstance(model.history_, list) and len(model.history_) == 3
    keys = {"epoch", "reconstruction_error", "pseudo_likelihood", "seconds"}
    for i, entry in enumerate(model.history_):
        assert set(entry) >= keys
        assert entry["epoch"] == i + 1
        assert 0 <= entry["reconstruction_error"] <= 1
        assert entry["pseudo_likelihood"] <= 0
        # the entry's schema: a recorded duration is a finite, non-negative float
        # (a field check, not a speed claim; speed is measured in benchmarks/)
        epoch_wall = entry["seconds"]
        assert np.isfinite(epoch_wall) and epoch_wall >= 0
    # the sklearn attributes exist on the sklearn model with the same shapes
    sk = SkBernoulliRBM(n_components=7, batch_size=10, n_iter=1, random_state=0).fit(X)
    for attr in ("components_", "intercept_hidden_", "intercept_visible_", "h_samples_"):
        assert getattr(sk, attr).shape == getattr(model, attr).shape, attr


def test_transform_and_score_samples_against_numpy():
    X = prototypes_data(n=50, D=20)
    model = BernoulliRBM(n_components=8, n_iter=2, random_state=0).fit(X)
    W, b, c = model.components_, model.intercept_visible_, model.intercept_hidden_
    np.testing.assert_allclose(model.transform(X), expit(X @ W.T + c), rtol=1e-12)
    np.testing.assert_allclose(model.fit_transform(X), model.transform(X), rtol=0)
    np.testing.assert_allclose(model.reconstruct(X),
                               expit(expit(X @ W.T + c) @ W + b), rtol=1e-12)
    F = -(X @ b) - np.logaddexp(0, X @ W.T + c).sum(axis=1)
    np.testing.assert_allclose(model.free_energy(X), F, rtol=1e-12)
    # pseudo-likelihood: D * log sigmoid(F(v with bit j flipped) - F(v)) for
    # some bit j per row; every row's score must equal one of the D candidates
    score = model.score_samples(X)
    D = X.shape[1]
    candidates = np.empty((len(X), D))
    for j in range(D):
        Xf = X.copy()
        Xf[:, j] = 1 - Xf[:, j]
        Ff = -(Xf @ b) - np.logaddexp(0, Xf @ W.T + c).sum(axis=1)
        candidates[:, j] = D * -np.logaddexp(0, -(Ff - F))
    assert np.all(np.min(np.abs(candidates - score[:, None]), axis=1) < 1e-9)
    # and the flipped bits are not all the same column
    chosen = np.argmin(np.abs(candidates - score[:, None]), axis=1)
    assert len(np.unique(chosen)) > 1


def test_gibbs_and_sample_outputs():
    X = prototypes_data(n=50, D=20)
    model = BernoulliRBM(n_components=8, n_iter=2, random_state=0).fit(X)
    v1 = model.gibbs(X)
    v2 = model.gibbs(X)
    assert v1.shape == X.shape and v1.dtype == np.float64
    assert set(np.unique(v1)) <= {0, 1}
    assert not np.array_equal(v1, v2)  # each call draws fresh numbers
    s = model.sample(30, n_steps=5)
    assert s.shape == (30, 20) and set(np.unique(s)) <= {0, 1}


# ------------------------------------------------------------------ dtypes


@pytest.mark.parametrize("in_dtype, dtype_param, expected", [
    (np.float32, None, np.float32),
    (np.float64, None, np.float64),
    (np.uint8, None, np.float32),
    (np.bool_, None, np.float32),
    (np.float32, np.float64, np.float64),
    (np.uint8, np.float64, np.float64),
    (np.float64, np.float32, np.float32),
])
def test_model_dtype(in_dtype, dtype_param, expected):
    X = prototypes_data(n=40, D=12)
    if in_dtype == np.uint8:
        X = (X * 255).astype(np.uint8)
    else:
        X = X.astype(in_dtype)
    model = BernoulliRBM(n_components=5, n_iter=1, random_state=0, dtype=dtype_param).fit(X)
    for attr in ("components_", "intercept_hidden_", "intercept_visible_", "h_samples_"):
        assert getattr(model, attr).dtype == expected, attr
    assert model.transform(X).dtype == expected
    assert model.gibbs(X).dtype == expected
    assert model.free_energy(X).dtype == expected


def test_uint8_means_intensity_over_255():
    rng = np.random.default_rng(0)
    X8 = rng.integers(0, 256, (30, 12)).astype(np.uint8)
    model = BernoulliRBM(n_components=5, n_iter=1, random_state=0).fit(X8)
    W, c = model.components_, model.intercept_hidden_
    Xf = X8.astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(model.transform(X8), model.transform(Xf))
    np.testing.assert_allclose(model.transform(X8), expit(Xf.astype(np.float64) @ W.T + c),
                               rtol=1e-5, atol=1e-6)


# ---------------------------------------------------- reproducibility, partial_fit


def test_fit_is_reproducible():
    X = prototypes_data(n=60, D=16)
    kw = dict(n_components=6, n_iter=3, batch_size=8)
    a = BernoulliRBM(random_state=3, **kw).fit(X)
    b = BernoulliRBM(random_state=3, **kw).fit(X)
    c = BernoulliRBM(random_state=4, **kw).fit(X)
    assert np.array_equal(a.components_, b.components_)
    assert np.array_equal(a.h_samples_, b.h_samples_)
    assert not np.array_equal(a.components_, c.components_)
    # a fresh RandomState of the same seed also reproduces
    d = BernoulliRBM(random_state=np.random.RandomState(5), **kw).fit(X)
    e = BernoulliRBM(random_state=np.random.RandomState(5), **kw).fit(X)
    assert np.array_equal(d.components_, e.components_)
    # refitting the same estimator restarts from scratch
    assert np.array_equal(a.fit(X).components_, b.components_)


@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_partial_fit_matches_reference_updates(method):
    # partial_fit = minibatches of batch_size rows, in order, one CD/PCD
    # update each, continuing the step counter; replay it with the NumPy
    # reference from the initial parameters
    X = prototypes_data(n=47, D=16)
    chunks = [X[:23], X[23:]]
    kw = dict(n_components=6, batch_size=5, learning_rate=0.05, random_state=0, method=method,
              k=2)
    model = BernoulliRBM(**kw)
    assert model.partial_fit(chunks[0]) is model
    init = BernoulliRBM(n_iter=0, **kw).fit(chunks[0])  # same initialisation, no updates
    W = init.components_.copy()
    vb = init.intercept_visible_.copy()
    hb = init.intercept_hidden_.copy()
    chains = np.zeros((5, 6)) if method == "pcd" else None
    cfg = TrainConfig(k=2, persistent=method == "pcd", learning_rate=0.05, momentum=0.0,
                      weight_decay=0.0, l1=0.0, sparsity_target=0.1, sparsity_cost=0.0)
    step = 0
    for i, chunk in enumerate(chunks):
        if i:
            assert model.partial_fit(chunk) is model
        order = np.arange(len(chunk), dtype=np.intp)
        ref.cd_update(chunk, order, 5, W, vb, hb, chains, None, None, None, np.zeros(6), {},
                      cfg, init._key, step, 1)
        step += -(-len(chunk) // 5)
        assert model.n_updates_ == step
        np.testing.assert_allclose(model.components_, W, rtol=0, atol=1e-12)
        np.testing.assert_allclose(model.intercept_visible_, vb, rtol=0, atol=1e-12)
        np.testing.assert_allclose(model.intercept_hidden_, hb, rtol=0, atol=1e-12)
        if method == "pcd":
            assert np.array_equal(model.h_samples_, chains)


def test_user_assigned_parameters_are_used():
    X = prototypes_data(n=30, D=10)
    model = BernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(X)
    rng = np.random.default_rng(1)
    W = rng.normal(0, 1, (4, 10))
    c = rng.normal(0, 1, 4)
    b = rng.normal(0, 1, 10)
    c_copy, b_copy = c.copy(), b.copy()
    model.components_ = W.tolist()  # even a list is taken
    model.intercept_hidden_ = c
    model.intercept_visible_ = b
    np.testing.assert_allclose(model.transform(X), expit(X @ W.T + c), rtol=1e-12)
    np.testing.assert_allclose(model.reconstruct(X), expit(expit(X @ W.T + c) @ W + b),
                               rtol=1e-12)
    F = -(X @ b) - np.logaddexp(0, X @ W.T + c).sum(axis=1)
    np.testing.assert_allclose(model.free_energy(X), F, rtol=1e-12)
    # inference does not modify the assigned arrays
    assert np.array_equal(c, c_copy) and np.array_equal(b, b_copy)
    # float32 parameters assigned to a float64 model switch its dtype
    model.components_ = W.astype(np.float32)
    model.intercept_hidden_ = c.astype(np.float32)
    model.intercept_visible_ = b.astype(np.float32)
    out = model.transform(X)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expit(X @ W.T + c), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------- learning


@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_learning_improves_prototypes(method):
    # exact log-likelihood (log Z enumerated over 2^10 hidden states) rises
    # by several nats per row in 15 epochs (the first epoch or two sit on a
    # plateau: the weights start tiny and symmetric, sklearn's model behaves
    # the same); history_ shows the reconstruction error falling and the
    # pseudo-likelihood rising
    X = prototypes_data()
    kw = dict(n_components=10, learning_rate=0.05, batch_size=10, random_state=0,
              method=method, n_jobs=1)
    before = exact_mean_log_likelihood(BernoulliRBM(n_iter=0, **kw).fit(X), X)
    model = BernoulliRBM(n_iter=15, **kw).fit(X)
    after = exact_mean_log_likelihood(model, X)
    assert after - before > 4, (before, after)
    recon = [h["reconstruction_error"] for h in model.history_]
    pl = [h["pseudo_likelihood"] for h in model.history_]
    assert recon[-1] < 0.7 * recon[0], recon
    assert np.sum(np.diff(recon) < 0) >= 10, recon  # falls in most epochs
    assert np.mean(pl[-3:]) > np.mean(pl[:3]) + 3, pl


def test_learning_bars_and_stripes():
    # the 30 bars-and-stripes images of 4x4 pixels; uniform bits give
    # log p = -11.09 per image and the best possible is -log 30 = -3.40.
    # CD-3 with momentum gets well below the start (about -6 here); the
    # reconstruction error almost vanishes.
    X = bars_and_stripes(4)
    assert X.shape == (30, 16)
    kw = dict(n_components=16, learning_rate=0.1, batch_size=5, random_state=0, method="cd",
              k=3, momentum=0.9, n_jobs=1)
    before = exact_mean_log_likelihood(BernoulliRBM(n_iter=0, **kw).fit(X), X)
    model = BernoulliRBM(n_iter=200, **kw).fit(X)
    after = exact_mean_log_likelihood(model, X)
    assert before == pytest.approx(-16 * np.log(2), abs=0.05)
    assert after > before + 3, (before, after)
    assert model.history_[-1]["reconstruction_error"] < 0.1 * model.history_[0][
        "reconstruction_error"]
    assert model.history_[-1]["pseudo_likelihood"] > model.history_[0]["pseudo_likelihood"]


def test_momentum_schedule_callable():
    X = prototypes_data(n=80, D=16)
    kw = dict(n_components=6, n_iter=3, random_state=0, learning_rate=0.05)
    const = BernoulliRBM(momentum=0.5, **kw).fit(X)
    as_callable = BernoulliRBM(momentum=lambda epoch: 0.5, **kw).fit(X)
    assert np.array_equal(const.components_, as_callable.components_)
    # a schedule is evaluated per epoch: 0 in epoch 0 then 0.9 differs from both constants
    schedule = BernoulliRBM(momentum=lambda e: 0.0 if e < 1 else 0.9, **kw).fit(X)
    none = BernoulliRBM(momentum=0.0, **kw).fit(X)
    high = BernoulliRBM(momentum=0.9, **kw).fit(X)
    assert not np.array_equal(schedule.components_, none.components_)
    assert not np.array_equal(schedule.components_, high.components_)
    # ... and its first epoch equals the momentum-free run's first epoch
    one = dict(kw, n_iter=1)
    assert np.array_equal(BernoulliRBM(momentum=lambda e: 0.0 if e < 1 else 0.9, **one)
                          .fit(X).components_,
                          BernoulliRBM(momentum=0.0, **one).fit(X).components_)
    with pytest.raises(ValueError, match="momentum"):
        BernoulliRBM(momentum=lambda e: 1.5, **kw).fit(X)


# ------------------------------------------------------ pickle and clone


def test_pickle_round_trip():
    X = prototypes_data(n=60, D=16).astype(np.float32)
    model = BernoulliRBM(n_components=6, n_iter=2, random_state=0).fit(X)
    restored = pickle.loads(pickle.dumps(model))
    assert np.array_equal(restored.transform(X), model.transform(X))
    assert restored.transform(X).dtype == np.float32
    assert np.array_equal(restored.gibbs(X, k=2), model.gibbs(X, k=2))
    # training continues identically
    restored.partial_fit(X)
    model.partial_fit(X)
    assert np.array_equal(restored.components_, model.components_)


def test_clone():
    X = prototypes_data(n=60, D=16)
    model = BernoulliRBM(n_components=6, n_iter=2, random_state=0, method="cd", k=2,
                         momentum=0.5).fit(X)
    twin = clone(model)
    assert not hasattr(twin, "components_")
    assert twin.get_params() == model.get_params()
    assert np.array_equal(twin.fit(X).components_, model.components_)


# ------------------------------------------------ scikit-learn's digits example


def test_digits_pipeline_as_good_as_sklearn():
    """scikit-learn's "RBM features for digit classification" example, both models.

    Test accuracy at a single seed varies by about +-0.01 between seeds (and
    with BLAS threading, through the ill-conditioned C=6000 logistic fit), so
    one seed cannot tell a 0.005 difference.  Compare the mean over seeds 0-4
    (the same seeds for both) with a slack of 0.005 (about one standard error
    of the difference of the means); BLAS is pinned to one thread so the
    numbers are the same on every machine.  An untrained RBM already gives
    ~0.94 here, so this only catches gross regressions; the mean-field
    reconstruction error on the test set is compared too, which does measure
    the training.
    """
    from sklearn import datasets
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import minmax_scale
    from threadpoolctl import threadpool_limits

    X, y = datasets.load_digits(return_X_y=True)
    X = minmax_scale(X.astype(np.float64), feature_range=(0, 1))
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)

    def recon_error(rbm):
        W, b, c = rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_
        return np.mean((X_test - expit(expit(X_test @ W.T + c) @ W + b)) ** 2)

    scores = {"fastrbm": [], "sklearn": []}
    recon = {"fastrbm": [], "sklearn": []}
    with threadpool_limits(limits=1, user_api="blas"):
        for seed in range(5):
            # n_jobs=1 (the BernoulliRBM helper): fastrbm's results do not depend on it
            for name, cls in (("fastrbm", BernoulliRBM), ("sklearn", SkBernoulliRBM)):
                pipe = Pipeline([
                    ("rbm", cls(n_components=100, learning_rate=0.06, n_iter=10,
                                random_state=seed)),
                    ("logistic", LogisticRegression(C=6000, max_iter=10000)),
                ])
                pipe.fit(X_train, y_train)
                scores[name].append(pipe.score(X_test, y_test))
                recon[name].append(recon_error(pipe.named_steps["rbm"]))
    assert np.mean(scores["fastrbm"]) >= np.mean(scores["sklearn"]) - 0.005, scores
    assert min(scores["fastrbm"]) > 0.9, scores
    # reconstruction error: within 5% of scikit-learn's (seed-to-seed spread ~4%)
    assert np.mean(recon["fastrbm"]) <= 1.05 * np.mean(recon["sklearn"]), recon


def test_get_feature_names_out():
    # one name per hidden unit, with the class-name prefix scikit-learn uses
    X = np.random.default_rng(0).random((20, 4))
    model = BernoulliRBM(n_components=3, n_iter=1, n_jobs=1).fit(X)
    assert list(model.get_feature_names_out()) == [
        "bernoullirbm0", "bernoullirbm1", "bernoullirbm2"]
