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

KEY = np.array([5, 7], np.uint32)


def network(dtype, sizes=(13, 530, 9, 4), seed=0, n=37):
    """Random weights, inputs in [0, 1) and labels; 530 units: more than one
    unit block of the kernels, not a multiple of their width."""
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(0, 0.5, (sizes[i + 1], sizes[i])).astype(dtype)
          for i in range(len(sizes) - 1)]
    bs = [rng.normal(0, 0.5, sizes[i + 1]).astype(dtype) for i in range(len(sizes) - 1)]
    X = rng.random((n, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], n).astype(np.intc)
    return X, y, Ws, bs


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
    X, y, Ws, bs = network(dtype)
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
    X, y, Ws, bs = network(dtype, sizes=(13, 70, 9, 4))
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
