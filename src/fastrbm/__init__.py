"""fastrbm: fast Restricted Boltzmann Machines for Python.

Public names only; see the README for a quick start.
"""
# first: fastrbm's OpenMP runtime must start with its wait policy set
from . import _wait_policy  # noqa: F401, I001

from . import evaluation
from ._config import get_config, show_config
from ._validation import OutOfRangeWarning
from ._version import __version__
from .categorical import CategoricalRBM
from .dbn import DBN, DBNClassifier
from .gaussian import GaussianBernoulliRBM
from .io import load_model, save_model
from .rbm import BernoulliRBM, DivergenceError

# registers the scale-out operations (importing dask only when used)
from . import _dask  # noqa: F401, E402, I001

__all__ = ["BernoulliRBM", "CategoricalRBM", "DBN", "DBNClassifier", "DivergenceError", "GaussianBernoulliRBM", "OutOfRangeWarning", "get_config", "load_model", "save_model",
           "show_config", "__version__", "evaluation"]
