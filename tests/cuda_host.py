"""A host stand-in for the GPU engine's device, for tests without a GPU.

``fastrbm._cupy`` talks to its device through a small interface (array
module, kernels by name, GEMM, transfers).  This module provides one that runs
on the CPU: arrays are NumPy arrays of a marked subclass (so dispatch treats
them as device arrays), GEMMs are NumPy matmuls, and the CUDA kernels are
``_cupy_kernels.cu`` itself, compiled as C++ with a few definitions for the
CUDA built-ins and run thread by thread.  So the CPU-only test suite checks
the engine's code paths and the kernels' arithmetic against the NumPy
reference; what it cannot check (the GPU compiler, cuBLAS, graph capture) is
left to ``benchmarks/gpu_check.py`` on a machine with a GPU.

The launcher also checks every kernel argument against the kernel's C
signature (pointer or scalar, size, integer or float), which catches the
mistake that would shift every later argument on a real GPU.
"""
import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile

import numpy as np
import scipy.sparse as sp

from fastrbm import _cupy

PRELUDE = r"""
#include <cstdint>
#include <cstring>
#include <cmath>
#include <utility>
#include <type_traits>
typedef uint32_t fr_u32;
typedef uint64_t fr_u64;
typedef int64_t fr_i64;
typedef uint8_t fr_u8;
struct fr_dim3 { unsigned x, y, z; };
static fr_dim3 threadIdx, blockIdx, blockDim, gridDim;
#define FR_HOST_EMULATION 1
#define __device__
#define __global__
#define __forceinline__ inline
static inline fr_u32 FR_UMULHI(fr_u32 a, fr_u32 b) { return (fr_u32)(((uint64_t)a * b) >> 32); }
static inline float __int_as_float(int b) { float f; std::memcpy(&f, &b, sizeof f); return f; }
template <typename T> static inline T atomicMin(T *a, T v) { T old = *a; if (v < old) *a = v; return old; }
using std::sqrt; using std::log; using std::cos; using std::sin; using std::exp;
using std::log1p; using std::expm1;
"""

LAUNCHER = r"""
template <typename... Args, std::size_t... I>
static void fr_call(void (*k)(Args...), void **p, std::index_sequence<I...>)
{
    k(*static_cast<typename std::remove_reference<Args>::type *>(p[I])...);
}
template <typename... Args>
static void fr_run(void (*k)(Args...), unsigned grid, unsigned block, void **p)
{
    gridDim.x = grid; blockDim.x = block;
    for (unsigned b = 0; b < grid; b++) {
        blockIdx.x = b;
        for (unsigned t = 0; t < block; t++) {
            threadIdx.x = t;
            fr_call(k, p, std::index_sequence_for<Args...>{});
        }
    }
}
template <typename... Args>
static int fr_signature(void (*)(Args...), int *sizes, int *kinds)
{
    int i = 0;
    ((sizes[i] = (int)sizeof(Args),
      kinds[i] = std::is_pointer<Args>::value ? 2 : (std::is_floating_point<Args>::value ? 1 : 0),
      i++), ...);
    return i;
}
struct fr_entry {
    const char *name;
    void (*run)(unsigned, unsigned, void **);
    int (*sig)(int *, int *);
};
#define FR_ENTRY(...) { #__VA_ARGS__, \
    [](unsigned g, unsigned b, void **p) { fr_run(&__VA_ARGS__, g, b, p); }, \
    [](int *s, int *k) { return fr_signature(&__VA_ARGS__, s, k); } },
static const fr_entry fr_table[] = {
%(entries)s
};
static const fr_entry *fr_find(const char *name)
{
    for (const fr_entry &e : fr_table)
        if (std::strcmp(e.name, name) == 0) return &e;
    return nullptr;
}
extern "C" int fr_emulate(const char *name, unsigned grid, unsigned block, void **params)
{
    const fr_entry *e = fr_find(name);
    if (!e) return -1;
    e->run(grid, block, params);
    return 0;
}
extern "C" int fr_kernel_signature(const char *name, int *sizes, int *kinds)
{
    const fr_entry *e = fr_find(name);
    return e ? e->sig(sizes, kinds) : -1;
}
"""


def compiler():
    """The C++ compiler the stand-in uses, or None."""
    return shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")


@functools.lru_cache(maxsize=None)
def _library():
    with open(_cupy.KERNEL_SOURCE) as f:
        kernels = f.read()
    entries = "\n".join(f"FR_ENTRY({name})" for name in _cupy.kernel_names())
    source = PRELUDE + kernels + LAUNCHER % {"entries": entries}
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    folder = os.path.join(tempfile.gettempdir(), f"fastrbm-cuda-host-{os.getuid()}")
    os.makedirs(folder, exist_ok=True)
    lib_path = os.path.join(folder, f"kernels-{digest}.so")
    if not os.path.exists(lib_path):
        src_path = os.path.join(folder, f"kernels-{digest}.cpp")
        with open(src_path, "w") as f:
            f.write(source)
        tmp = f"{lib_path}.{os.getpid()}.tmp"
        # no contraction into FMA: the host then rounds like the GPU build
        # (--fmad=false) and the CPU engine
        subprocess.run([compiler(), "-std=c++17", "-O1", "-ffp-contract=off", "-fPIC",
                        "-shared", "-o", tmp, src_path], check=True, capture_output=True)
        os.replace(tmp, lib_path)
    lib = ctypes.CDLL(lib_path)
    lib.fr_emulate.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint,
                               ctypes.POINTER(ctypes.c_void_p)]
    lib.fr_kernel_signature.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int),
                                        ctypes.POINTER(ctypes.c_int)]
    return lib


class StandInArray(np.ndarray):
    """A NumPy array that the engines treat as a device array."""

    def get(self):
        """A host copy (as ``cupy.ndarray.get``)."""
        return np.array(self)


class StandInCSR(sp.csr_matrix):
    """A SciPy CSR matrix that the engines treat as a device matrix."""


class _ArrayModule:
    """NumPy, returning :class:`StandInArray` where NumPy returns arrays."""

    def __getattr__(self, name):
        value = getattr(np, name)
        if not callable(value) or isinstance(value, type):
            return value

        @functools.wraps(value)
        def wrapped(*args, **kwargs):
            return to_device(value(*args, **kwargs))

        return wrapped


def to_device(X):
    """X as a stand-in device array (a view for dense arrays)."""
    if sp.issparse(X):
        return X if isinstance(X, StandInCSR) else StandInCSR(X)
    if isinstance(X, np.ndarray) and not isinstance(X, StandInArray):
        return X.view(StandInArray)
    return X


class HostDevice:
    """The interface of ``fastrbm._cupy.CupyDevice``, on the CPU."""

    name = "host stand-in"

    def __init__(self):
        self.xp = _ArrayModule()
        self._lib = _library()
        self._signatures = {}
        self.launches = 0

    def owns(self, X):
        return isinstance(X, (StandInArray, StandInCSR))

    def is_sparse(self, X):
        return sp.issparse(X)

    def to_host(self, X):
        return sp.csr_matrix(X) if sp.issparse(X) else np.array(X)

    def to_device(self, X):
        return to_device(np.asarray(X) if not sp.issparse(X) else X)

    def bind_stream(self):
        pass

    def prepare_gemm(self, trans_a, trans_b, alpha, A, B, beta, C):
        return functools.partial(self.gemm, trans_a, trans_b, alpha, A, B, beta, C)

    def gemm(self, trans_a, trans_b, alpha, A, B, beta, C):
        a = np.asarray(A).T if trans_a else np.asarray(A)
        b = np.asarray(B).T if trans_b else np.asarray(B)
        result = C.dtype.type(alpha) * (a @ b)
        if beta:
            result += C.dtype.type(beta) * np.asarray(C)
        C[...] = result

    def _signature(self, name):
        if name not in self._signatures:
            sizes, kinds = (ctypes.c_int * 64)(), (ctypes.c_int * 64)()
            n = self._lib.fr_kernel_signature(name.encode(), sizes, kinds)
            if n < 0:
                raise KeyError(f"no kernel {name!r}")
            self._signatures[name] = list(zip(sizes[:n], kinds[:n]))
        return self._signatures[name]

    def kernel(self, name):
        return functools.partial(self._launch, name)

    def _launch(self, name, grid, block, args):
        signature = self._signature(name)
        if len(args) != len(signature):
            raise TypeError(f"{name}: {len(args)} arguments for {len(signature)} parameters")
        keep, pointers = [], (ctypes.c_void_p * len(args))()
        for i, (arg, (size, kind)) in enumerate(zip(args, signature)):
            if kind == 2:
                if not isinstance(arg, np.ndarray):
                    raise TypeError(f"{name}: argument {i} must be an array, got {arg!r}")
                holder = ctypes.c_void_p(arg.ctypes.data)
                keep.append(holder)
                pointers[i] = ctypes.addressof(holder)
                continue
            if not isinstance(arg, np.generic):
                raise TypeError(f"{name}: argument {i} must be a NumPy scalar (CuPy packs "
                                f"Python scalars by its own rules), got {type(arg).__name__}")
            if arg.itemsize != size or (arg.dtype.kind == "f") != (kind == 1):
                raise TypeError(f"{name}: argument {i} is {arg.dtype}, the kernel takes a "
                                f"{size}-byte {'float' if kind == 1 else 'integer'}")
            holder = np.array(arg)
            keep.append(holder)
            pointers[i] = holder.ctypes.data
        if self._lib.fr_emulate(name.encode(), int(grid[0]), int(block[0]), pointers) != 0:
            raise KeyError(f"no kernel {name!r}")
        self.launches += 1
