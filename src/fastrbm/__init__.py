"""fastrbm: fast Restricted Boltzmann Machines for Python.

Public names only; see the README for a quick start.
"""
from ._config import get_config, show_config
from ._version import __version__
from .rbm import BernoulliRBM

__all__ = ["BernoulliRBM", "get_config", "show_config", "__version__"]
