"""The training tiles of wide machines (issue 19; _layout.pyx, the comment
above WIDE_MACHINE_CPUS): the regime is picked by the machine's CPU count or
FASTRBM_TILE_CPUS, never by n_jobs, so fits stay bit-identical for any
thread count in both regimes."""
import os
import subprocess
import sys

import numpy as np
import pytest

from fastrbm import BernoulliRBM, GaussianBernoulliRBM, _layout

from test_engine import binary_data


@pytest.fixture(params=[False, True], ids=["small-machine", "wide-machine"])
def regime(request):
    previous = _layout._set_wide_tiles(request.param)
    yield request.param
    _layout._set_wide_tiles(previous)


def test_tiles_of_each_regime(regime):
    # 784 x 500 at batch 100 by hand: unit_block's span is 512 (4 x 100
    # rounded up to a power of two), so 2 blocks of 252 hidden units (250
    # rounded up to a multiple of 4) and 4 blocks of 196 visible units
    expected = ({"rows": 100, "hidden_units": 128, "visible_units": 128, "grad_cols": 256}
                if regime else
                {"rows": 100, "hidden_units": 252, "visible_units": 196, "grad_cols": 784})
    assert _layout.train_tiles(784, 500, 100) == expected
    assert _layout.wide_tiles() is regime


def fit(estimator, X, n_jobs, **options):
    kw = dict(n_components=260, batch_size=100, n_iter=2, learning_rate=0.05,
              random_state=0, n_jobs=n_jobs)
    kw.update(options)
    return estimator(**kw).fit(X)


PARAMS = ("components_", "intercept_visible_", "intercept_hidden_")
CASES = [(BernoulliRBM, dict(method="cd", momentum=0.5)),
         (BernoulliRBM, dict(method="pcd", k=2, weight_decay=1e-3, sparsity_cost=0.1)),
         (BernoulliRBM, dict(method="cd", centered=True)),
         (GaussianBernoulliRBM, dict(method="pcd", sigma="learn", learning_rate=0.01))]
CASE_IDS = ["cd", "pcd-penalties", "centered", "gaussian-learned-sigma"]


def data_for(estimator, dtype):
    X = binary_data(400, 300, p=0.3, seed=21).astype(np.float64)
    if estimator is GaussianBernoulliRBM:
        X = X + np.random.default_rng(3).normal(0, 0.3, X.shape)
    return X.astype(dtype)


@pytest.mark.parametrize("estimator, options", CASES, ids=CASE_IDS)
def test_wide_tiles_any_thread_count(regime, estimator, options):
    # 300 visible, 260 hidden, batch 100: the wide tiles (128 units, 256
    # gradient columns) differ from the small machine's (132 and 152 units,
    # whole rows), so both decompositions are exercised
    assert _layout.train_tiles(300, 260, 100)["hidden_units"] == (128 if regime else 132)
    X = data_for(estimator, np.float32)
    fits = [fit(estimator, X, n_jobs, **options) for n_jobs in (1, 2, 3)]
    for other in fits[1:]:
        for attr in PARAMS + (("sigma_",) if hasattr(fits[0], "sigma_") else ()):
            assert np.array_equal(getattr(fits[0], attr), getattr(other, attr)), attr


@pytest.mark.parametrize("estimator, options", CASES, ids=CASE_IDS)
def test_regimes_differ_only_by_rounding(estimator, options):
    # float64: a rounding difference flips a Bernoulli draw only if a uniform
    # falls within ~1e-16 of its probability, so the two decompositions give
    # the same samples and parameters equal to rounding
    X = data_for(estimator, np.float64)
    fits = []
    for wide in (False, True):
        previous = _layout._set_wide_tiles(wide)
        try:
            fits.append(fit(estimator, X, 2, **options))
        finally:
            _layout._set_wide_tiles(previous)
    for attr in PARAMS + (("sigma_",) if hasattr(fits[0], "sigma_") else ()):
        np.testing.assert_allclose(getattr(fits[1], attr), getattr(fits[0], attr),
                                   rtol=0, atol=1e-11, err_msg=attr)


def test_tile_cpus_from_the_environment(monkeypatch):
    monkeypatch.setenv("FASTRBM_TILE_CPUS", "16")
    assert _layout._machine_tile_cpus() == 16
    monkeypatch.setenv("FASTRBM_TILE_CPUS", "2")
    assert _layout._machine_tile_cpus() == 2
    monkeypatch.delenv("FASTRBM_TILE_CPUS")
    assert _layout._machine_tile_cpus() == (os.cpu_count() or 1)
    for bad in ("0", "-3", "many", "2.5"):
        monkeypatch.setenv("FASTRBM_TILE_CPUS", bad)
        with pytest.raises(ValueError, match="FASTRBM_TILE_CPUS must be a positive integer"):
            _layout._machine_tile_cpus()


@pytest.mark.parametrize("cpus, wide", [("1", False), ("3", False), ("4", True), ("64", True)])
def test_tile_cpus_pick_the_regime_at_import(cpus, wide):
    env = dict(os.environ, FASTRBM_TILE_CPUS=cpus)
    out = subprocess.run([sys.executable, "-c",
                          "from fastrbm import _layout; print(_layout.wide_tiles())"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(wide)
