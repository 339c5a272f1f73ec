"""Defaults that learn on data of any size (issue 14, item 2): Adam in the
fine-tuning kernels (Cython and GPU engines against the NumPy reference,
thread-count invariance, one hand-computed step), training length counted
in parameter updates, and DBNClassifier at its defaults on small data sets
(scikit-learn's check_classifiers_train among them)."""
import warnings

import numpy as np
import pytest

from fastrbm import _cupy_mlp, _mlp
from fastrbm import _mlp_reference as ref

# the random network of the kernel tests (530 hidden units: more than one
# unit block of the kernels, not a multiple of their width)
from test_dbn import KEY, SIZES, network  # noqa: E402


def adam_state(Ws, bs):
    """Parameters (copies) and zero first and second moments, in the order
    train_epoch_adam takes them."""
    return [[W.copy() for W in Ws], [b.copy() for b in bs],
            [np.zeros_like(W) for W in Ws], [np.zeros_like(b) for b in bs],
            [np.zeros_like(W) for W in Ws], [np.zeros_like(b) for b in bs]]


# ------------------------------------------------------------ Adam kernels

def test_adam_first_step_moves_each_parameter_by_the_rate_against_its_gradient():
    """Kingma & Ba's bias correction makes update 1 exactly
    -lr * g / (|g| + eps / sqrt(1 - beta2)) ~ -lr * sign(g): checked against the
    kernel's own gradient on a one-minibatch epoch (float64)."""
    X, y, Ws, bs = network(np.float64, sizes=(6, 9, 3), n=10)
    _, GW, Gb = _mlp.gradients(X, y, Ws, bs, 0.0)
    state = adam_state(Ws, bs)
    lr = 0.01
    _mlp.train_epoch_adam(X, y, np.arange(len(X), dtype=np.intp), len(X), *state, lr, 0.0)
    for new, old, g in zip(state[0] + state[1], Ws + bs, GW + Gb):
        # m_1 = 0.1 g, s_1 = 0.001 g^2, lr_1 = lr sqrt(0.001) / 0.1
        want = old - lr * np.sqrt(0.001) / 0.1 * (0.1 * g) / (np.sqrt(0.001 * g * g) + 1e-8)
        np.testing.assert_allclose(new, want, rtol=1e-12, atol=1e-15)
        big = np.abs(g) > 1e-4
        np.testing.assert_allclose((old - new)[big], lr * np.sign(g[big]), rtol=1e-3)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_adam_epochs_match_numpy_reference(dtype, tol, dropout):
    """Two epochs of Adam, batches of 8 rows (the last has 5): the second
    goes on from the first's moments and update counter (bias correction)."""
    X, y, Ws, bs = network(dtype, SIZES)
    order = np.random.default_rng(1).permutation(len(X)).astype(np.intp)
    state = adam_state(Ws, bs)
    state_ref = [[a.copy() for a in group] for group in state]
    for epoch in range(2):
        drop = dict(dropout=dropout, key=KEY, first_step=3 + 5 * epoch)
        total = _mlp.train_epoch_adam(X, y, order, 8, *state, 0.01, 0.01, 2, **drop)
        total_ref = ref.train_epoch_adam(X, y, order, 8, *state_ref, 0.01, 0.01, 1, **drop)
        assert total == pytest.approx(total_ref, rel=tol)
    for group, group_ref in zip(state, state_ref):
        for got, want in zip(group, group_ref):
            assert got.dtype == dtype
            # Adam moves each parameter by about lr per step whatever the
            # gradient's size: tolerances relative to the parameters' scale
            np.testing.assert_allclose(got, want, rtol=tol * 10, atol=tol * 10)
    assert not np.allclose(state[0][0], Ws[0])  # it did update


def test_adam_bit_identical_across_thread_counts():
    X, y, Ws, bs = network(np.float32, sizes=(50, 530, 300, 10), n=200)
    order = np.random.default_rng(2).permutation(len(X)).astype(np.intp)
    results = []
    for threads in (1, 2):
        state = adam_state(Ws, bs)
        total = _mlp.train_epoch_adam(X, y, order, 64, *state, 0.001, 1e-4, threads,
                                      dropout=0.2, key=KEY)
        results.append((total, state))
    (t1, s1), (t2, s2) = results
    assert t1 == t2
    for g1, g2 in zip(s1, s2):
        for a, b in zip(g1, g2):
            np.testing.assert_array_equal(a, b)


def test_adam_rejects_mismatched_moments():
    X, y, Ws, bs = network(np.float64, sizes=(6, 9, 3), n=10)
    state = adam_state(Ws, bs)
    state[4][0] = np.zeros((9, 5))
    with pytest.raises(ValueError, match="layer 0"):
        _mlp.train_epoch_adam(X, y, np.arange(10, dtype=np.intp), 4, *state, 0.01, 0.0)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_gpu_adam_matches_the_reference(gpu, dtype, tol, dropout):
    """The GPU engine's Adam (host stand-in on CPU-only machines, CuPy with a
    GPU) against the NumPy reference over two epochs."""
    X, y, Ws, bs = network(dtype, sizes=[13, 70, 9, 4])
    put = gpu.put
    order = np.random.default_rng(1).permutation(len(X)).astype(np.intp)
    state_ref = adam_state(Ws, bs)
    state = [[put(a.copy()) for a in group] for group in state_ref]
    for epoch in range(2):
        drop = dict(dropout=dropout, key=KEY, first_step=3 + 5 * epoch)
        total = _cupy_mlp.train_epoch_adam(put(X), put(y), order, 8, *state, 0.01, 0.01, 1,
                                           **drop)
        total_ref = ref.train_epoch_adam(X, y, order, 8, *state_ref, 0.01, 0.01, 1, **drop)
        assert isinstance(total, float)
        assert total == pytest.approx(total_ref, rel=tol)
    for group, group_ref in zip(state, state_ref):
        for got, want in zip(group, group_ref):
            np.testing.assert_allclose(gpu.get(got), want, rtol=tol * 10, atol=tol * 10)
    assert not np.allclose(gpu.get(state[0][0]), Ws[0])


# ------------------------------------------------------------ training length

def test_epochs_for_updates_known_answers():
    from fastrbm.rbm import epochs_for_updates

    assert epochs_for_updates(10, 1000, 150, 10) == 67      # 15 updates per epoch
    assert epochs_for_updates(10, 1000, 1797, 10) == 10     # 1800 updates already
    assert epochs_for_updates(5, 2000, 1797, 50) == 56      # 36 per epoch, 2016 updates
    assert epochs_for_updates(3, 0, 30, 10) == 3
    assert epochs_for_updates(0, 1000, 30, 10) == 0         # no training asked for
    assert epochs_for_updates(4, 7, 0, 10) == 0


def test_rbm_min_updates_raises_the_epochs_of_small_data_only():
    from fastrbm import BernoulliRBM

    X = (np.random.default_rng(0).random((40, 6)) < 0.5).astype(np.float64)
    small = BernoulliRBM(4, n_iter=2, batch_size=10, min_updates=50, random_state=0).fit(X)
    assert small.n_epochs_ == 13 and small.n_updates_ == 52
    exact = BernoulliRBM(4, n_iter=2, batch_size=10, min_updates=0, random_state=0).fit(X)
    assert exact.n_epochs_ == 2 and exact.n_updates_ == 8
    # enough rows: the rule changes nothing, and the fit is the min_updates=0 fit
    big = (np.random.default_rng(1).random((300, 6)) < 0.5).astype(np.float64)
    a = BernoulliRBM(4, n_iter=2, batch_size=10, min_updates=60, random_state=0).fit(big)
    b = BernoulliRBM(4, n_iter=2, batch_size=10, min_updates=0, random_state=0).fit(big)
    assert a.n_epochs_ == 2
    np.testing.assert_array_equal(a.components_, b.components_)
    assert BernoulliRBM().min_updates == 0     # scikit-learn's epochs unless asked
    with pytest.raises(ValueError, match="min_updates"):
        BernoulliRBM(min_updates=-1).fit(X)


def test_gaussian_rbm_takes_min_updates():
    from fastrbm import GaussianBernoulliRBM

    X = np.random.default_rng(0).normal(size=(40, 5))
    rbm = GaussianBernoulliRBM(4, n_iter=1, batch_size=20, min_updates=9, random_state=0)
    assert rbm.fit(X).n_epochs_ == 5


def test_classifier_min_updates_and_solver_settings():
    from fastrbm import DBNClassifier

    rng = np.random.default_rng(0)
    X = rng.random((50, 6))
    y = (X[:, 0] > 0.5).astype(int)
    kw = dict(hidden_layer_sizes=(8,), rbm_params={"n_iter": 1, "min_updates": 0},
              batch_size=16, max_iter=3, random_state=0, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = DBNClassifier(min_updates=40, **kw).fit(X, y)
        assert clf.n_iter_ == 10 and clf.n_updates_ == 40      # 4 updates per epoch
        assert DBNClassifier(min_updates=0, **kw).fit(X, y).n_iter_ == 3
        # the pretraining layers get DEFAULT_RBM_PARAMS's min_updates
        pre = DBNClassifier((8,), max_iter=1, min_updates=0, random_state=0,
                            n_jobs=1).fit(X, y)
        assert pre.dbn_.rbms_[0].n_updates_ == 300
    default = DBNClassifier()
    assert default.solver == "adam" and default.learning_rate is None
    assert default._learning_rate() == 0.003 and default.min_updates == 3000
    assert DBNClassifier(solver="sgd")._learning_rate() == 0.1
    for bad, match in [({"solver": "lbfgs"}, "solver"), ({"min_updates": -1}, "min_updates"),
                       ({"learning_rate": -1.0}, "learning_rate")]:
        with pytest.raises(ValueError, match=match):
            DBNClassifier(**{**kw, **bad}).fit(X, y)


def test_classifier_adam_fit_follows_the_reference_kernels():
    """An Adam fit equals the NumPy reference's epochs run by hand with the
    estimator's seeds, order and schedule (float64, no pretraining)."""
    from fastrbm import DBNClassifier
    from fastrbm._random import seed_sequence as _seed_sequence

    rng = np.random.default_rng(3)
    X = rng.random((30, 5))
    y = (X[:, 1] + X[:, 2] > 1).astype(int)
    clf = DBNClassifier((7,), pretrain=False, max_iter=3, min_updates=0, batch_size=8,
                        random_state=4, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    words = _seed_sequence(4).generate_state(4, np.uint32)
    init = np.random.default_rng(np.random.SeedSequence(words, spawn_key=(0,)))
    Ws, bs = [], []
    for n_in, n_out in ((5, 7), (7, 2)):
        bound = np.sqrt(2.0 / (n_in + n_out))
        Ws.append(init.uniform(-bound, bound, (n_out, n_in)))
        bs.append(np.zeros(n_out))
    state = adam_state(Ws, bs)
    step = 0
    for epoch in range(3):
        order = np.random.default_rng(np.random.SeedSequence(
            words, spawn_key=(2, epoch))).permutation(30)
        ref.train_epoch_adam(X, y, order, 8, *state, 0.003 * (1 - epoch / 3), 1e-5,
                             key=words[:2], first_step=step)
        step += 4
    for got, want in zip(clf.coefs_ + clf.intercepts_, state[0] + state[1]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_warning_suggests_only_what_was_not_tried():
    """The saturating stack of test_dbn.py's warning test, with SGD: the
    advice names Adam and pretraining; with Adam and pretraining set it names
    neither (and still names a step below the one used)."""
    from sklearn.exceptions import ConvergenceWarning
    from fastrbm import DBNClassifier

    rng = np.random.default_rng(0)
    X = (rng.random((400, 60)) < 0.3).astype(np.float64)
    y = (X[:, :30].sum(1) > X[:, 30:].sum(1)).astype(int) + 2 * (X[:, 0] > 0)
    with pytest.warns(ConvergenceWarning) as record:
        DBNClassifier((500, 500), pretrain=False, solver="sgd", learning_rate=0.5,
                      max_iter=10, min_updates=0, random_state=0, n_jobs=1).fit(X, y)
    text = str(record[0].message)
    assert "solver='adam'" in text and "pretrain=True" in text and "below 0.5" in text
    clf = DBNClassifier((500, 500), max_iter=1, min_updates=0, random_state=0, n_jobs=1,
                        rbm_params={"n_iter": 1, "min_updates": 0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    clf.history_[-1]["loss"] = 10.0      # as if it had collapsed: only the advice is tested
    with pytest.warns(ConvergenceWarning) as record:
        clf._warn_if_not_learning(np.asarray(y))
    text = str(record[0].message)
    assert "solver=" not in text and "pretrain=True" not in text
    assert "below 0.003" in text and "(500, 500)" in text


# ------------------------------------------------------------ defaults that learn

def test_default_classifier_learns_iris():
    """Issue 14: DBNClassifier() stayed at chance (0.33) on iris; at the new
    defaults it classifies a held-out stratified fifth (MLPClassifier's
    default reaches 0.91 on such folds: benchmarks/README.md)."""
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import MinMaxScaler
    from fastrbm import DBNClassifier

    X, y = load_iris(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    scaler = MinMaxScaler().fit(Xtr)
    clf = DBNClassifier(random_state=0, n_jobs=1, out_of_range="clip")
    clf.fit(scaler.transform(Xtr), ytr)
    assert clf.score(scaler.transform(Xte), yte) >= 0.9


def test_classifier_passes_check_classifiers_train():
    """scikit-learn's check_classifiers_train (300 blobs, binary and 3
    classes, > 0.83 training accuracy).  Every default except the depth: one
    500-unit layer (the default's width) keeps the test under a minute; the
    old settings (solver='sgd', learning_rate=0.1, min_updates=0 for
    fine-tuning and pretraining) fail it with this network, and the default
    (500, 500) network passes too (minutes on 2 loaded cores).  The blobs are
    standardised, so values outside [0, 1] are clamped (out_of_range='clip')."""
    from sklearn.utils.estimator_checks import check_classifiers_train
    from fastrbm import DBNClassifier

    check_classifiers_train("DBNClassifier",
                            DBNClassifier((500,), random_state=0, n_jobs=1,
                                          out_of_range="clip"))


def test_cli_file_mode_defaults_learn_on_a_small_file(tmp_path):
    """Issue 14: ``fastrbm train --data my_images.npz`` on the 1797 digits
    (file defaults: batch 50, 5 epochs = 180 updates) reconstructed every row
    as the same mean image (row spread 0.006 against the data's 0.23).  Now
    the file mode runs at least 2000 updates (56 epochs here), and the
    reconstructions follow the rows; --n-iter still means exactly that."""
    from sklearn.datasets import load_digits
    from fastrbm import cli, io

    X = load_digits().data / 16
    np.savez(tmp_path / "my_images.npz", X=X)
    args = ["train", "--data", str(tmp_path / "my_images.npz"), "--no-plots", "--quiet",
            "--n-jobs", "1", "--seed", "0"]
    assert cli.main(args + ["--out", str(tmp_path / "a")]) == 0
    model = io.load_model(tmp_path / "a" / "model.npz")
    R = 1 / (1 + np.exp(-(model.transform(X) @ model.components_
                          + model.intercept_visible_)))
    assert R.std(axis=0).mean() > 0.05
    assert cli.main(args + ["--n-iter", "2", "--out", str(tmp_path / "b")]) == 0
    assert io.load_model(tmp_path / "b" / "model.npz").n_epochs_ == 2
    assert model.n_epochs_ == 56
