"""fastrbm: fast Restricted Boltzmann Machines for Python.

Public names only; see the README for a quick start.
"""
from . import evaluation
from ._config import get_config, show_config
from ._version import __version__
from .dbn import DBN, DBNClassifier
from .gaussian import GaussianBernoulliRBM
from .io import load_model, save_model
from .rbm import BernoulliRBM

__all__ = ["BernoulliRBM", "DBN", "DBNClassifier", "GaussianBernoulliRBM", "get_config", "load_model", "save_model",
           "show_config", "__version__", "evaluation"]
