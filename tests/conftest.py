"""Fixtures shared by the test files.

``gpu``: the device the GPU-engine tests run on, twice: the host stand-in of
tests/cuda_host.py (needs only a C++ compiler) and a real CUDA GPU through
CuPy (skipped, with the reason, when CuPy or a device is missing).
"""
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
