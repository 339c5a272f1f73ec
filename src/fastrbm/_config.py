"""Build and runtime configuration: ``fastrbm.show_config()``."""
import sys

from . import _cpu, _layout, _wait_policy
from ._version import __version__


def get_config():
    """Build and runtime facts as a dict.

    Returns
    -------
    dict
        ``version``, ``openmp`` (compiled in), ``max_threads`` (what an
        OpenMP region gets now), ``wait_policy`` ('passive' when fastrbm set
        it as its OpenMP runtime started, 'environment' when the user's
        ``OMP_WAIT_POLICY``/``GOMP_SPINCOUNT``/``KMP_BLOCKTIME`` decided),
        ``simd`` (how the sampling kernels were compiled), ``training_tiles``
        ('wide' or 'small': the tiles of the training kernel, picked by the
        machine's CPU count or ``FASTRBM_TILE_CPUS``, never by the thread
        count; docs/design.md), ``tile_cpus`` (that CPU count) and ``blas``
        (threadpoolctl's view of the loaded BLAS libraries: name, version,
        threads, CPU kernel).
    """
    from threadpoolctl import threadpool_info

    pools = threadpool_info()
    blas = [
        {key: info.get(key) for key in
         ("internal_api", "version", "num_threads", "architecture", "filepath")}
        for info in pools if info.get("user_api") == "blas"
    ]
    openmp_runtimes = [info.get("filepath") for info in pools
                       if info.get("user_api") == "openmp"]
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "openmp": _cpu.openmp_enabled(),
        "max_threads": _cpu.max_threads(),
        "wait_policy": _wait_policy.applied,
        "simd": _cpu.simd_dispatch(),
        "training_tiles": "wide" if _layout.wide_tiles() else "small",
        "tile_cpus": _layout._machine_tile_cpus(),
        "blas": blas,
        "openmp_runtimes": openmp_runtimes,
    }


def show_config(file=None):
    """Print the version, OpenMP status, thread count and BLAS in use.

    Parameters
    ----------
    file : file-like, optional
        Where to print (default ``sys.stdout``).
    """
    cfg = get_config()
    out = file or sys.stdout
    print(f"fastrbm {cfg['version']} (Python {cfg['python']})", file=out)
    print(f"  OpenMP:      {'enabled' if cfg['openmp'] else 'DISABLED (single-threaded build)'}",
          file=out)
    print(f"  threads:     {cfg['max_threads']}", file=out)
    print(f"  waiting:     {cfg['wait_policy']}", file=out)
    print(f"  sampling:    {cfg['simd']}", file=out)
    print(f"  tiles:       {cfg['training_tiles']} (training kernel, picked by "
          f"{cfg['tile_cpus']} CPUs; FASTRBM_TILE_CPUS overrides)", file=out)
    for path in cfg["openmp_runtimes"]:
        print(f"  OpenMP lib:  {path}", file=out)
    if not cfg["blas"]:
        print("  BLAS:        (none loaded yet)", file=out)
    for lib in cfg["blas"]:
        print(f"  BLAS:        {lib['internal_api']} {lib['version']} "
              f"({lib['architecture']}, {lib['num_threads']} threads) {lib['filepath']}",
              file=out)
