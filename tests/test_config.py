"""Build/runtime configuration: version, show_config, get_config, OpenMP."""
import io
import os
import re

import pytest

import fastrbm
from fastrbm import _cpu


def test_version_is_a_string():
    assert isinstance(fastrbm.__version__, str)
    assert re.match(r"^\d+\.\d+", fastrbm.__version__)
    assert fastrbm.get_config()["version"] == fastrbm.__version__


def test_show_config_prints_openmp_and_blas(capsys):
    fastrbm.show_config()
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any("OpenMP" in line for line in lines), out
    assert any("BLAS" in line for line in lines), out
    assert fastrbm.__version__ in out
    # the OpenMP line says what get_config says
    openmp_line = next(line for line in lines if "OpenMP" in line)
    if fastrbm.get_config()["openmp"]:
        assert "enabled" in openmp_line
    else:
        assert "DISABLED" in openmp_line


def test_show_config_to_file():
    buf = io.StringIO()
    fastrbm.show_config(file=buf)
    assert "OpenMP" in buf.getvalue() and "BLAS" in buf.getvalue()


def test_get_config_types():
    cfg = fastrbm.get_config()
    assert isinstance(cfg["openmp"], bool)
    assert cfg["openmp"] == _cpu.openmp_enabled()
    assert isinstance(cfg["max_threads"], int) and cfg["max_threads"] >= 1
    if not cfg["openmp"]:
        assert cfg["max_threads"] == 1
    assert isinstance(cfg["blas"], list)
    assert isinstance(cfg["simd"], str)
    # the training tiles: the machine's CPU count picks them (4 or more: wide)
    assert cfg["tile_cpus"] == (os.cpu_count() or 1) or "FASTRBM_TILE_CPUS" in os.environ
    assert cfg["training_tiles"] == ("wide" if cfg["tile_cpus"] >= 4 else "small")


def test_config_reports_the_forced_tile_regime(capsys):
    from fastrbm import _layout
    for wide in (True, False):
        previous = _layout._set_wide_tiles(wide)
        try:
            assert fastrbm.get_config()["training_tiles"] == ("wide" if wide else "small")
            fastrbm.show_config()
            assert f"tiles:       {'wide' if wide else 'small'} (training" in (
                capsys.readouterr().out)
        finally:
            _layout._set_wide_tiles(previous)


@pytest.mark.skipif(os.environ.get("FASTRBM_REQUIRE_OPENMP") != "1",
                    reason="set FASTRBM_REQUIRE_OPENMP=1 to require an OpenMP build")
def test_openmp_required():
    assert fastrbm.get_config()["openmp"] is True, "fastrbm was built without OpenMP"


def _config_in_new_process(env_changes):
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    env.update(env_changes)
    code = ("import json, os, fastrbm; "
            "print(json.dumps([fastrbm.get_config()['wait_policy'], "
            "os.environ.get('OMP_WAIT_POLICY')]))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_wait_policy_passive_by_default_and_environment_restored():
    # fastrbm's OpenMP runtime starts with passive waiting; the process's
    # environment is left as it was for other libraries
    assert _config_in_new_process({}) == ["passive", None]


@pytest.mark.parametrize("name, value", [("OMP_WAIT_POLICY", "active"),
                                         ("GOMP_SPINCOUNT", "100000"),
                                         ("KMP_BLOCKTIME", "200")])
def test_wait_policy_of_the_user_is_kept(name, value):
    policy, omp = _config_in_new_process({name: value})
    assert policy == "environment"
    assert omp == (value if name == "OMP_WAIT_POLICY" else None)
