"""DBN and DBNClassifier: backprop kernels against NumPy and finite
differences, thread-count determinism, greedy layer-wise training, the
digits acceptance test, and scikit-learn's estimator checks."""
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from scipy.special import expit

import fastrbm
from fastrbm import _mlp
from fastrbm import _mlp_reference as ref

# many fits here are on random labels or run a few epochs (equality, pickling
# and scikit-learn's checks), where "learned nothing" is the expected result;
# the warning itself is tested in test_classifier_warns_when_fine_tuning_learns_nothing
pytestmark = pytest.mark.filterwarnings("ignore:DBNClassifier fine-tuning learned nothing")


def DBN(*args, **kwargs):
    """fastrbm.DBN with one OpenMP thread unless asked otherwise (results do
    not depend on n_jobs, tested below; two threads wait on each other on a
    busy shared 2-core machine)."""
    kwargs.setdefault("n_jobs", 1)
    return fastrbm.DBN(*args, **kwargs)


def DBNClassifier(*args, **kwargs):
    """fastrbm.DBNClassifier with one OpenMP thread unless asked otherwise."""
    kwargs.setdefault("n_jobs", 1)
    return fastrbm.DBNClassifier(*args, **kwargs)


# 530 units: more than one unit block (blocks are 136 wide), not a multiple
SIZES = [13, 530, 9, 4]


def network(dtype, sizes=SIZES, seed=0, n=37):
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(0, 0.5, (sizes[i + 1], sizes[i])).astype(dtype)
          for i in range(len(sizes) - 1)]
    bs = [rng.normal(0, 0.5, sizes[i + 1]).astype(dtype) for i in range(len(sizes) - 1)]
    X = rng.random((n, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], n).astype(np.intc)
    return X, y, Ws, bs


def digits_split():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


# --------------------------------------------------------------- kernels
KEY = np.array([5, 7], np.uint32)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_kernels_match_numpy_reference(dtype, rtol, dropout):
    X, y, Ws, bs = network(dtype)
    P = _mlp.forward(X, Ws, bs, 2)
    assert P.dtype == dtype
    np.testing.assert_allclose(P, ref.forward(X, Ws, bs), rtol=rtol, atol=rtol * 1e-2)

    drop = dict(dropout=dropout, key=KEY, step_index=11)
    loss, GW, Gb = _mlp.gradients(X, y, Ws, bs, 0.01, 2, **drop)
    loss_ref, GW_ref, Gb_ref = ref.gradients(X, y, Ws, bs, 0.01, 1, **drop)
    if dropout:  # the masks matter (so the equality above is not vacuous)
        assert abs(loss - _mlp.gradients(X, y, Ws, bs, 0.01, 2)[0]) > 1e-3
    assert loss == pytest.approx(loss_ref, rel=rtol)
    for got, want in zip(GW + Gb, GW_ref + Gb_ref):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=rtol * 10, atol=rtol * 1e-2)

    # one epoch of momentum SGD, batches of 8 rows (the last one has 5)
    order = np.random.default_rng(1).permutation(len(X)).astype(np.intp)
    params = [[w.copy() for w in Ws], [b.copy() for b in bs],
              [np.zeros_like(w) for w in Ws], [np.zeros_like(b) for b in bs]]
    params_ref = [[a.copy() for a in group] for group in params]
    drop = dict(dropout=dropout, key=KEY, first_step=3)
    total = _mlp.train_epoch(X, y, order, 8, *params, 0.1, 0.9, 0.01, 2, **drop)
    total_ref = ref.train_epoch(X, y, order, 8, *params_ref, 0.1, 0.9, 0.01, 1, **drop)
    assert total == pytest.approx(total_ref, rel=rtol)
    for group, group_ref in zip(params, params_ref):
        for got, want in zip(group, group_ref):
            np.testing.assert_allclose(got, want, rtol=rtol * 10, atol=rtol * 1e-1)
    assert not np.allclose(params[0][0], Ws[0])  # it did update


@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_gradients_match_finite_differences(dropout):
    """float64 kernel gradients against central differences of the NumPy loss
    (with dropout: of the thinned network, masks fixed by key and step)."""
    X, y, Ws, bs = network(np.float64, sizes=[7, 11, 6, 3], seed=3, n=9)
    wd = 0.03
    drop = dict(dropout=dropout, key=KEY, step=5)
    _, GW, Gb = _mlp.gradients(X, y, Ws, bs, wd, 1, dropout, KEY, 5)
    eps = 1e-6
    rng = np.random.default_rng(0)
    for params, grads in ((Ws, GW), (bs, Gb)):
        for layer, (p, g) in enumerate(zip(params, grads)):
            for flat in rng.choice(p.size, size=min(p.size, 8), replace=False):
                idx = np.unravel_index(flat, p.shape)
                old = p[idx]
                p[idx] = old + eps
                up = ref.loss(X, y, Ws, bs, wd, **drop)
                p[idx] = old - eps
                down = ref.loss(X, y, Ws, bs, wd, **drop)
                p[idx] = old
                fd = (up - down) / (2 * eps)
                assert g[idx] == pytest.approx(fd, rel=1e-6, abs=1e-9), (layer, idx)


def test_kernels_bit_identical_across_thread_counts():
    X, y, Ws, bs = network(np.float32, sizes=[50, 530, 300, 10], n=200)
    order = np.random.default_rng(2).permutation(len(X)).astype(np.intp)
    results = []
    for threads in (1, 2):
        params = [[w.copy() for w in Ws], [b.copy() for b in bs],
                  [np.zeros_like(w) for w in Ws], [np.zeros_like(b) for b in bs]]
        total = _mlp.train_epoch(X, y, order, 64, *params, 0.1, 0.9, 1e-4, threads,
                                 dropout=0.2, key=KEY)
        results.append((total, params, _mlp.forward(X, params[0], params[1], threads)))
    (t1, p1, f1), (t2, p2, f2) = results
    assert t1 == t2
    for g1, g2 in zip(p1, p2):
        for a, b in zip(g1, g2):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(f1, f2)


def test_classifier_bit_identical_for_n_jobs():
    Xtr, _, ytr, _ = digits_split()
    fits = [fastrbm.DBNClassifier((64, 32), rbm_params={"n_iter": 2}, max_iter=2,
                                  min_updates=0, dropout=0.1, random_state=0, n_jobs=n).fit(Xtr[:400], ytr[:400])
            for n in (1, 2)]
    assert fits[0].n_updates_ == 2 * 13
    for a, b in zip(fits[0].coefs_ + fits[0].intercepts_, fits[1].coefs_ + fits[1].intercepts_):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------- DBN
def test_dbn_is_greedy_stack_of_rbms():
    """Layer 2 is exactly the RBM one gets by training on layer 1's probabilities."""
    X = (load_digits().data[:300] / 16).astype(np.float32)
    params = [{"n_iter": 3, "batch_size": 20, "min_updates": 0},
              {"n_iter": 2, "learning_rate": 0.02}]
    dbn = DBN((20, 7), rbm_params=params, random_state=4).fit(X)
    first, second = dbn.rbms_
    assert (first.n_iter, first.batch_size) == (3, 20)
    assert (second.n_iter, second.learning_rate, second.batch_size) == (2, 0.02, 64)
    alone = fastrbm.BernoulliRBM(**second.get_params()).fit(first.transform(X))
    np.testing.assert_array_equal(alone.components_, second.components_)
    H = dbn.transform(X)
    assert H.shape == (300, 7) and H.dtype == np.float32
    np.testing.assert_array_equal(H, second.transform(first.transform(X)))
    assert list(dbn.get_feature_names_out()) == [f"dbn{i}" for i in range(7)]
    assert len(dbn.history_) == 2 and len(dbn.history_[0]) == 3


def test_dbn_sampled_layer_input_differs_and_is_reproducible():
    X = (load_digits().data[:200] / 16).astype(np.float32)
    kw = dict(rbm_params={"n_iter": 2}, random_state=1)
    a = DBN((16, 8), layer_input="sample", **kw).fit(X)
    b = DBN((16, 8), layer_input="sample", **kw).fit(X)
    c = DBN((16, 8), layer_input="proba", **kw).fit(X)
    np.testing.assert_array_equal(a.rbms_[1].components_, b.rbms_[1].components_)
    np.testing.assert_array_equal(a.rbms_[0].components_, c.rbms_[0].components_)
    assert not np.array_equal(a.rbms_[1].components_, c.rbms_[1].components_)


def test_dbn_pipeline_pickle_clone_and_sample():
    Xtr, Xte, ytr, yte = digits_split()
    dbn = DBN((64,), rbm_params={"n_iter": 10, "batch_size": 16, "learning_rate": 0.1},
              random_state=0)
    pipe = make_pipeline(dbn, LogisticRegression(max_iter=1000)).fit(Xtr, ytr)
    assert pipe.score(Xte, yte) > 0.87  # measured 0.88 (fixed seed and split)
    fitted = pipe[0]
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.transform(Xte), fitted.transform(Xte))
    fresh = clone(fitted)
    assert not hasattr(fresh, "rbms_") and fresh.get_params() == fitted.get_params()

    deep = DBN((32, 16), rbm_params={"n_iter": 2}, random_state=0).fit(Xtr)
    mean = deep.sample(5, n_steps=10)
    assert mean.shape == (5, 64) and mean.dtype == np.float32
    assert 0 <= mean.min() and mean.max() <= 1 and not np.all(np.isin(mean, (0, 1)))
    bits = deep.sample(5, n_steps=10, downward="sample")
    assert np.all(np.isin(bits, (0, 1)))
    replay = DBN((32, 16), rbm_params={"n_iter": 2}, random_state=0).fit(Xtr)
    np.testing.assert_array_equal(replay.sample(5, n_steps=10), mean)
    assert not np.array_equal(deep.sample(5, n_steps=10), mean)  # fresh draws per call


def test_bad_parameters_raise():
    X = np.random.default_rng(0).random((20, 5))
    for kwargs, match in [({"hidden_layer_sizes": ()}, "hidden_layer_sizes"),
                          ({"hidden_layer_sizes": (4, 0)}, "hidden_layer_sizes"),
                          ({"rbm_params": [{}]}, "list of 2"),
                          ({"rbm_params": {"n_components": 3}}, "n_components"),
                          ({"layer_input": "x"}, "layer_input")]:
        kwargs = {"hidden_layer_sizes": (4, 3), **kwargs}
        with pytest.raises(ValueError, match=match):
            DBN(**kwargs).fit(X)
    with pytest.raises(ValueError, match="momentum"):
        DBNClassifier((4,), momentum=1.0).fit(X, np.arange(20) % 2)
    with pytest.raises(ValueError, match="at least 2 classes"):
        DBNClassifier((4,)).fit(X, np.zeros(20))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        DBNClassifier((4,), out_of_range="raise").fit(X * 3, np.arange(20) % 2)


def test_classifier_warns_when_fine_tuning_learns_nothing():
    """A wide random-init sigmoid stack under a large step saturates and ends
    at the class-frequency loss (the Fashion-MNIST 784-500-500-2000-10 random
    init of benchmarks/README.md): fit says so; a network that learns does not."""
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(0)
    X = (rng.random((400, 60)) < 0.3).astype(np.float64)
    y = (X[:, :30].sum(1) > X[:, 30:].sum(1)).astype(int) + 2 * (X[:, 0] > 0)
    freq = np.bincount(y) / len(y)
    with pytest.warns(ConvergenceWarning, match="class frequencies"):
        dead = DBNClassifier((500, 500), pretrain=False, learning_rate=0.5, max_iter=10,
                             random_state=0).fit(X, y)
    # the independent check of the claim: chance-level loss, one class predicted
    assert dead.history_[-1]["loss"] >= -np.sum(freq * np.log(freq)) * 0.99
    assert len(np.unique(dead.predict(X))) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        alive = DBNClassifier((64,), pretrain=False, max_iter=10, random_state=0).fit(X, y)
    assert alive.score(X, y) > 0.9


# --------------------------------------------------------------- classifier
def test_digits_pretraining_beats_random_init_and_reaches_97():
    """Acceptance: fixed split, equal fine-tuning epochs, >= 97% with pretraining."""
    Xtr, Xte, ytr, yte = digits_split()
    kw = dict(rbm_params={"batch_size": 16, "n_iter": 20, "learning_rate": 0.1},
              batch_size=32, learning_rate=0.3, learning_rate_schedule="constant", max_iter=10,
              solver="sgd", min_updates=0, random_state=0)
    pre = DBNClassifier((256,), pretrain=True, **kw).fit(Xtr, ytr)
    rand = DBNClassifier((256,), pretrain=False, **kw).fit(Xtr, ytr)
    acc_pre, acc_rand = pre.score(Xte, yte), rand.score(Xte, yte)
    assert pre.n_iter_ == rand.n_iter_ == 10
    assert acc_pre >= 0.97, acc_pre
    assert acc_pre > acc_rand, (acc_pre, acc_rand)
    # fine-tuning moved the pretrained weights, and the RBM is kept unchanged
    assert not np.array_equal(pre.coefs_[0], pre.dbn_.rbms_[0].components_)
    assert pre.history_[-1]["loss"] < pre.history_[0]["loss"]


def test_string_and_binary_labels_proba_early_stopping_verbose(capsys):
    Xtr, Xte, ytr, yte = digits_split()
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])
    clf = DBNClassifier((32,), rbm_params={"n_iter": 2}, max_iter=30, min_updates=0,
                        early_stopping=True, n_iter_no_change=2, tol=1.0, verbose=1, random_state=0)
    clf.fit(Xtr, names[ytr])
    assert set(clf.classes_) == set(names)
    assert clf.predict(Xte[:5]).dtype == names.dtype
    P = clf.predict_proba(Xte)
    assert P.shape == (len(Xte), 10)
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-5)
    # tol=1 means no epoch can improve on the first (accuracies are <= 1): stop after 1 + 2 epochs
    assert clf.n_iter_ == 3 and "validation_accuracy" in clf.history_[0]
    out = capsys.readouterr().out
    assert "[DBNClassifier] epoch 1/30" in out and "validation accuracy" in out

    binary = ytr >= 5
    clf2 = DBNClassifier((32,), rbm_params={"n_iter": 2}, max_iter=20, batch_size=32,
                         random_state=0)
    clf2.fit(Xtr, binary)
    assert clf2.predict_proba(Xte).shape == (len(Xte), 2)
    assert clf2.score(Xte, yte >= 5) > 0.85
    # uint8 input means intensity / 255: fine-tuning and prediction see exactly
    # the float32 of it (without pretraining, whose RBM initial biases round
    # the two inputs' means differently)
    X8 = np.round(Xtr * 255).astype(np.uint8)
    a = DBNClassifier((16,), pretrain=False, max_iter=2, random_state=0)
    b = clone(a)
    np.testing.assert_array_equal(a.fit(X8, ytr).predict_proba(X8),
                                  b.fit(X8 / np.float32(255), ytr).predict_proba(X8))


def test_classifier_pickle_roundtrip():
    Xtr, Xte, ytr, _ = digits_split()
    clf = DBNClassifier((16,), rbm_params={"n_iter": 1}, max_iter=2, random_state=0)
    clf.fit(Xtr, ytr)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(Xte), clf.predict_proba(Xte))


# --------------------------------------------------------------- Gaussian input
def breast_cancer_split():
    X, y = load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


def test_gaussian_first_layer_classifies_real_valued_data():
    """Raw breast_cancer features (scales from 1e-3 to 1e3) through a Gaussian
    first layer: well above the majority-class rate; a strict Bernoulli input
    layer rejects the same data, and the default clamps it with a warning."""
    Xtr, Xte, ytr, yte = breast_cancer_split()
    clf = DBNClassifier((32,), visible_units="gaussian",
                        rbm_params={"n_iter": 20, "batch_size": 16}, max_iter=30,
                        random_state=0).fit(Xtr, ytr)
    chance = max(np.mean(yte), 1 - np.mean(yte))       # 0.63
    assert type(clf.dbn_.rbms_[0]) is fastrbm.GaussianBernoulliRBM
    assert clf.score(Xte, yte) > 0.9 > chance + 0.25      # measured 0.96
    np.testing.assert_allclose(clf.input_mean_, clf.dbn_.rbms_[0].mean_)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        DBNClassifier((8,), max_iter=1, out_of_range="raise").fit(Xtr, ytr)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        DBN((8,), out_of_range="raise").fit(Xtr)
    with pytest.warns(fastrbm.OutOfRangeWarning):
        DBN((8,), rbm_params={"n_iter": 1}).fit(Xtr)
    with pytest.raises(ValueError, match="visible_units"):
        DBNClassifier((8,), visible_units="real").fit(Xtr, ytr)
    bad = Xtr.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(bad)


@pytest.mark.parametrize("sigma", ["fixed", "learn"])
def test_gaussian_first_layer_weights_act_on_standardised_input(sigma):
    """Before fine-tuning, the network's first layer is the Gaussian RBM:
    sigmoid(coefs_[0] u + intercepts_[0]) with u = (x - input_mean_) /
    input_scale_ equals the RBM's P(h | x), learned s included."""
    Xtr, Xte, ytr, _ = breast_cancer_split()
    clf = DBNClassifier((16, 8), visible_units="gaussian", max_iter=0, random_state=1,
                        rbm_params=[{"n_iter": 10, "batch_size": 16, "sigma": sigma},
                                    {"n_iter": 2}], dtype=np.float64).fit(Xtr, ytr)
    rbm = clf.dbn_.rbms_[0]
    if sigma == "learn":
        assert np.max(np.abs(rbm.sigma_ - 1)) > 0.01
    u = (Xte - clf.input_mean_) / clf.input_scale_
    np.testing.assert_allclose(expit(u @ clf.coefs_[0].T + clf.intercepts_[0]),
                               rbm.transform(Xte), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(clf.dbn_.transform(Xte),
                               clf.dbn_.rbms_[1].transform(rbm.transform(Xte)))


def test_gaussian_dbn_transform_and_sample():
    X = load_digits().data[:300]        # raw intensities 0-16
    dbn = DBN((24, 8), visible_units="gaussian", rbm_params={"n_iter": 3},
              random_state=0).fit(X)
    assert dbn.transform(X).shape == (300, 8)
    mean = dbn.sample(50, n_steps=20)
    assert mean.shape == (50, 64) and np.all(np.isfinite(mean))
    # downward means come back on the data's scale (mean 4.9, sd 6.0), not
    # the standardised one (mean 0)
    assert abs(mean.mean() - X.mean()) < 0.5 * X.std()
    drawn = dbn.sample(50, n_steps=20, downward="sample")
    assert drawn.std() > mean.std()
    one = DBN((6,), visible_units="gaussian", rbm_params={"n_iter": 2},
              random_state=0).fit(X)
    assert one.sample(5, n_steps=3).shape == (5, 64)


# --------------------------------------------------------------- scikit-learn
# The checks feed generic data (negative values, values up to ~100) that
# Bernoulli units clamp as they read it (out_of_range='clip', the default;
# docs/guide/units.md); rejecting such data with out_of_range='raise' is
# tested in test_bad_parameters_raise.
@parametrize_with_checks(
    [fastrbm.DBN((8, 6), rbm_params={"n_iter": 3, "batch_size": 10}, out_of_range="clip",
                 n_jobs=1),
     fastrbm.DBNClassifier((16,), rbm_params={"n_iter": 3, "batch_size": 10}, max_iter=30,
                           batch_size=16, out_of_range="clip", n_jobs=1),
     fastrbm.DBNClassifier((16,), rbm_params={"n_iter": 3, "batch_size": 10}, max_iter=30,
                           batch_size=16, visible_units="gaussian", n_jobs=1)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
