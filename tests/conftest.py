"""Fixtures shared by the test files.

``gpu``: the device the GPU-engine tests run on, twice: the host stand-in of
tests/cuda_host.py (needs only a C++ compiler) and a real CUDA GPU through
CuPy (skipped, with the reason, when CuPy or a device is missing).

Tests marked ``slow`` (minutes on 2 cores) run with ``--run-slow`` (or
FASTRBM_RUN_SLOW=1); CI runs them as a step of their own after the README's
test command (``.ci/run``).
"""
import os

import pytest
import scipy.sparse as sp

import cuda_host
from fastrbm import _cupy


class Device:
    """The device under test and how to put arrays on it."""

    def __init__(self, name, dev, to_device):
        self.name, self.dev, self._to_device = name, dev, to_device

    def put(self, X):
        return self._to_device(X)

    def get(self, X):
        return self.dev.to_host(X)


def _cupy_device():
    try:
        import cupy
        import cupyx.scipy.sparse as cusp
    except ImportError:
        pytest.skip("CuPy is not installed (pip install fastrbm[gpu])")
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - no driver, no device, ...
        pytest.skip(f"no CUDA device: {exc}")
    if n == 0:
        pytest.skip("no CUDA device")

    def put(X):
        return cusp.csr_matrix(X) if sp.issparse(X) else cupy.asarray(X)

    _cupy._set_device(None)
    return Device("cupy", _cupy.device(), put)


@pytest.fixture(params=["host", "cupy"])
def gpu(request):
    if request.param == "host":
        if cuda_host.compiler() is None:
            pytest.skip("no C++ compiler for the host stand-in of the CUDA kernels")
        previous = _cupy._set_device(cuda_host.HostDevice())
        yield Device("host", _cupy.device(), cuda_host.to_device)
    else:
        previous = _cupy._device
        yield _cupy_device()
    _cupy._set_device(previous)


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true",
                     help="also run the tests marked slow (minutes on 2 cores)")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes on 2 cores; run with --run-slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow") or os.environ.get("FASTRBM_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow (CI runs it in its own step)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def fine_tiles():
    """Training tiles far finer than the automatic ones (3 rows, 4 units,
    5 gradient columns), so that even a small problem has many row tiles,
    unit tiles and gradient tiles, including partial ones at every edge."""
    from fastrbm import _layout
    previous = _layout._set_train_tiles(3, 4, 5)
    yield
    _layout._set_train_tiles(*previous)
