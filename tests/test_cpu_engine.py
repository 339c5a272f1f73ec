"""The compiled CPU engine (_cpu) is one module gathering the kernel modules'
operations: the engine NumPy input gets, with every operation its callers use."""
import numpy as np
import scipy.sparse as sp

from fastrbm import _cpu, _reference
from fastrbm._backend import get_engine

#: The operations every engine offers (the seam's contract), and the module
#: of the CPU engine that holds each.
OPERATIONS = {
    "cd_update": "_gibbs", "make_workspace": "_gibbs", "gibbs": "_gibbs",
    "hidden_proba": "_rows", "visible_proba": "_rows", "free_energy": "_rows",
    "ais_log_weights": "_ais",
    "uniforms": "_sampling", "bernoulli_sample": "_sampling", "gaussian_sample": "_sampling",
}
#: What the estimators, evaluation and the other engines use besides them.
HELPERS = {
    "as_source": "_source", "find_invalid": "_source", "check_counters": "_sampling",
    "check_key": "_sampling", "check_dims": "_layout", "max_threads": "_layout",
    "openmp_enabled": "_layout", "simd_dispatch": "_sampling", "set_simd": "_sampling",
    "philox4x32_10": "_sampling",
}


def test_numpy_and_scipy_input_get_the_cpu_engine():
    assert get_engine() is _cpu
    assert get_engine(np.zeros((2, 3), np.float32)) is _cpu
    assert get_engine(sp.csr_matrix(np.eye(3))) is _cpu


def test_every_operation_comes_from_its_kernel_module():
    for name, module in {**OPERATIONS, **HELPERS}.items():
        function = getattr(_cpu, name)
        assert callable(function), name
        assert function.__module__ == f"fastrbm.{module}", (name, function.__module__)


def test_the_reference_offers_the_same_operations():
    for name in OPERATIONS:
        assert callable(getattr(_reference, name)), name


def test_cpu_operations_agree_with_the_reference_on_a_small_model():
    rng = np.random.default_rng(3)
    X = (rng.random((9, 6)) < 0.4).astype(np.float64)
    W = 0.3 * rng.standard_normal((4, 6))
    vb, hb = 0.1 * rng.standard_normal(6), 0.1 * rng.standard_normal(4)
    np.testing.assert_allclose(_cpu.hidden_proba(X, W, hb, 1),
                               _reference.hidden_proba(X, W, hb, 1), rtol=1e-12)
    np.testing.assert_allclose(_cpu.free_energy(X, W, vb, hb, 2),
                               _reference.free_energy(X, W, vb, hb, 2), rtol=1e-12)
