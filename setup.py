"""Build of fastrbm's compiled extensions (the CPU engine's kernel modules, _mlp and _sequences).

OpenMP flags are chosen per compiler.  A compiler without OpenMP still builds
a working (single-threaded) extension, unless FASTRBM_REQUIRE_OPENMP=1, which
CI sets, turns that into a build error; FASTRBM_NO_OPENMP=1 skips OpenMP on
purpose (the serial build CI tests).  No machine-specific or fast-math
compiler flags are ever added (wheels run on any CPU of their platform): the
SIMD paths in _kernels.h are chosen at run time by CPU features.
"""
import glob
import os
import subprocess
import sys
import sysconfig
import tempfile
import textwrap

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OMP_TEST = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return omp_get_max_threads() > 0 && n > 0 ? 0 : 1;
    }
    """
)


def _truthy(name):
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _libomp_prefix():
    """Homebrew/MacPorts libomp location for Apple clang, if any."""
    candidates = [os.environ.get("LIBOMP_PREFIX", "")]
    try:
        out = subprocess.run(["brew", "--prefix", "libomp"], capture_output=True,
                             text=True, check=False)
        candidates.append(out.stdout.strip())
    except OSError:
        pass
    candidates += ["/opt/homebrew/opt/libomp", "/usr/local/opt/libomp", "/opt/local"]
    for prefix in candidates:
        if prefix and os.path.exists(os.path.join(prefix, "include", "omp.h")):
            return prefix
    return None


def openmp_flags(compiler):
    """(compile_args, link_args) that enable OpenMP for this compiler."""
    ctype = compiler.compiler_type
    if ctype == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        prefix = _libomp_prefix()
        if prefix is None:
            return None
        return (["-Xpreprocessor", "-fopenmp", f"-I{prefix}/include"],
                [f"-L{prefix}/lib", "-lomp", f"-Wl,-rpath,{prefix}/lib"])
    return ["-fopenmp"], ["-fopenmp"]


def compiles_with(compiler, compile_args, link_args):
    """Whether a small OpenMP program compiles and links with these flags."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp_test.c")
        with open(src, "w") as fh:
            fh.write(OMP_TEST)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=compile_args)
            compiler.link_executable(objs, os.path.join(tmp, "omp_test"),
                                     extra_postargs=link_args)
        except Exception:  # any compiler/linker failure means "no OpenMP"
            return False
    return True


class BuildExt(build_ext):
    def build_extensions(self):
        # FASTRBM_NO_OPENMP=1 builds the serial fallback on purpose (CI tests it)
        flags = None if _truthy("FASTRBM_NO_OPENMP") else openmp_flags(self.compiler)
        ok = flags is not None and compiles_with(self.compiler, *flags)
        if not ok:
            msg = "fastrbm: OpenMP not found; building a single-threaded extension"
            if _truthy("FASTRBM_REQUIRE_OPENMP"):
                raise RuntimeError(msg.replace("building", "refusing to build")
                                   + " (FASTRBM_REQUIRE_OPENMP is set)")
            print("WARNING: " + msg, file=sys.stderr)
        ctype = self.compiler.compiler_type
        for ext in self.extensions:
            if ctype == "msvc":
                ext.extra_compile_args += ["/O2"]
            else:
                ext.extra_compile_args += ["-O3", "-fno-math-errno", "-Wno-unused-function"]
            if ok:
                ext.extra_compile_args += flags[0]
                ext.extra_link_args += flags[1]
        super().build_extensions()


debug = _truthy("FASTRBM_DEBUG")
# every .pxd and the C header: a change to one rebuilds the modules that use it
SHARED_SOURCES = sorted(glob.glob("src/fastrbm/*.pxd")) + ["src/fastrbm/_kernels.h"]


def kernel_extension(name):
    """The extension fastrbm.<name> from src/fastrbm/<name>.pyx (flags: BuildExt)."""
    return Extension(
        f"fastrbm.{name}",
        [f"src/fastrbm/{name}.pyx"],
        include_dirs=[numpy.get_include(), "src/fastrbm"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
        # a module's own header (_categorical.h) rebuilds that module only
        depends=SHARED_SOURCES + glob.glob(f"src/fastrbm/{name}.h")
        # the categorical tempering sweeps use the swap energies of _tempering.h
        + (["src/fastrbm/_tempering.h"] if name == "_categorical" else []),
    )


# the CPU engine (_cpu.py gathers its operations) by concern, and the
# backpropagation kernels of DBNClassifier
extensions = [kernel_extension(name) for name in
              ("_source", "_sampling", "_layout", "_rows", "_gibbs", "_ais", "_mlp",
               "_categorical", "_tempering")]
# sequence weights and pair counts of fastrbm.sequences (same flags, via BuildExt)
extensions.append(Extension(
    "fastrbm._sequences",
    ["src/fastrbm/_sequences.pyx"],
    include_dirs=[numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
))

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["src"],
        compiler_directives={"boundscheck": debug, "wraparound": debug,
                             "language_level": 3},
        annotate=False,
    ),
    cmdclass={"build_ext": BuildExt},
)
