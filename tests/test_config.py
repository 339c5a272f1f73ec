"""Build/runtime configuration: version, show_config, get_config, OpenMP."""
import io
import os
import re

import pytest

import fastrbm
from fastrbm import _gibbs


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
    assert cfg["openmp"] == _gibbs.openmp_enabled()
    assert isinstance(cfg["max_threads"], int) and cfg["max_threads"] >= 1
    if not cfg["openmp"]:
        assert cfg["max_threads"] == 1
    assert isinstance(cfg["blas"], list)
    assert isinstance(cfg["simd"], str)


@pytest.mark.skipif(os.environ.get("FASTRBM_REQUIRE_OPENMP") != "1",
                    reason="set FASTRBM_REQUIRE_OPENMP=1 to require an OpenMP build")
def test_openmp_required():
    assert fastrbm.get_config()["openmp"] is True, "fastrbm was built without OpenMP"
