"""Sphinx configuration of the fastrbm documentation site.

Build it with ``bash tools/build_docs.sh`` (warnings are errors there).
"""
import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# the examples import helpers from their own folder when run by sphinx-gallery
sys.path.insert(0, str(ROOT / "examples"))

import fastrbm  # noqa: E402  (the installed package, or src/ on PYTHONPATH)

project = "fastrbm"
author = "fastrbm developers"
copyright = "fastrbm developers"
release = fastrbm.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinxarg.ext",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "generated/*.examples", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.json",
                    "auto_examples/*.md5", "auto_examples/*.codeobj.json"]
templates_path = ["_templates"]

# --- API reference ----------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
# numpydoc writes the member tables of each class; autosummary pages list them
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# Structural checks of every documented docstring (numpydoc.validate): a
# missing Parameters/Returns entry or an unknown section is a warning, and the
# build runs with -W, so it fails.  tests/test_docstrings.py checks the same
# without Sphinx.
numpydoc_validation_checks = {"GL08", "PR01", "PR02", "RT01", "YD01", "GL06", "GL07"}
numpydoc_validation_exclude = {
    r"\.__init__$",          # documented by the class docstring (scikit-learn style)
    r"\.set_\w+_request$",   # scikit-learn's metadata-routing helpers
    # a result record (dataclass): its fields, the __init__ parameters, are
    # documented as Attributes (tests/test_docstrings.py allows the same)
    r"^fastrbm\.evaluation\.AISResult$",
}

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
}
# the build runs offline: intersphinx inventories are optional
if os.environ.get("FASTRBM_DOCS_OFFLINE", "1") == "1":
    intersphinx_mapping = {}
    extensions.remove("sphinx.ext.intersphinx")

# --- doctests ---------------------------------------------------------------
doctest_global_setup = """
import numpy as np
import fastrbm
"""

# --- gallery ----------------------------------------------------------------
# Every script in examples/ is a gallery item and runs during the build on
# the build machine's CPU, except those named here: they are shown with the
# output of a stored run in their own text (and say so).
NOT_RUN = {
    "gpu_training.py": "needs an NVIDIA GPU and CuPy",
    "digits_rbm_features.py": "minutes on 2 cores (scikit-learn's side and C=6000 logistic regression)",
}
_not_run = "|".join(re.escape(name) for name in NOT_RUN)
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": rf"/(?!(?:{_not_run})$)[^/]*\.py$",
    "ignore_pattern": r"/_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "min_reported_time": 1,
    # "Examples using X" lists on the API pages
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("fastrbm",),
    "show_memory": False,
    "within_subsection_order": "FileNameSortKey",
    "capture_repr": ("_repr_html_",),
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
}

# --- HTML -------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"fastrbm {release}"
html_static_path = []
html_theme_options = {
    "navbar_end": ["navbar-icon-links"],
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_show_sourcelink = False

myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3
# benchmarks/README.md (included by guide/performance.md) goes from a level-1
# to a level-3 heading: right on GitHub, a warning for MyST
suppress_warnings = ["myst.header"]


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Hide members that fastrbm's classes inherit from scikit-learn or object.

    The classes are documented with ``:inherited-members:`` so that, e.g.,
    GaussianBernoulliRBM shows the ``fit`` it inherits from BernoulliRBM;
    get_params, set_output, set_*_request and the like belong to scikit-learn
    and are documented there.
    """
    if what != "class" or skip:
        return skip
    if isinstance(obj, property) and not obj.__doc__:
        return True  # a fitted attribute such as sigma_: in the Attributes table
    target = obj.fget if isinstance(obj, property) else obj
    module = getattr(target, "__module__", None) or ""
    if not module.startswith("fastrbm"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
