"""
RBM features + logistic regression, beside scikit-learn
=======================================================

The scikit-learn example "Restricted Boltzmann Machine features for digit
classification" with fastrbm as a one-line drop-in: run::

    python examples/digits_rbm_features.py

and it prints the test accuracy of fastrbm's and scikit-learn's RBM pipelines
(same settings, same split) and their fit times.

Not run during the documentation build (it took 16 minutes on the build
machine).  The output of a run on 2026-12-02 (fastrbm 0.1.0.dev0,
scikit-learn 1.9.1, NumPy 2.4.6; a shared 2-core machine with a load
average of 12-17, so the times are inflated, most of all the logistic
regressions, where NumPy's OpenBLAS threads fought over the busy cores):

.. code-block:: none

    fastrbm       test accuracy 0.9304   RBM fit   2.5 s, with the logistic regression 394.5 s
    scikit-learn  test accuracy 0.9354   RBM fit  12.4 s, with the logistic regression 542.8 s
"""
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM as SklearnRBM
from sklearn.preprocessing import minmax_scale

from fastrbm import BernoulliRBM


def nudge_dataset(X, Y):
    """Four 1-pixel shifts of every image, as in scikit-learn's example."""
    from scipy.ndimage import convolve

    directions = [[[0, 1, 0], [0, 0, 0], [0, 0, 0]], [[0, 0, 0], [1, 0, 0], [0, 0, 0]],
                  [[0, 0, 0], [0, 0, 1], [0, 0, 0]], [[0, 0, 0], [0, 0, 0], [0, 1, 0]]]

    def shift(x, w):
        return convolve(x.reshape((8, 8)), mode="constant", weights=w).ravel()

    X = np.concatenate([X] + [np.apply_along_axis(shift, 1, X, w) for w in directions])
    Y = np.concatenate([Y for _ in range(5)], axis=0)
    return X, Y


def main():
    digits = load_digits()
    X = np.asarray(digits.data, "float32")
    X, y = nudge_dataset(X, digits.target)
    X = minmax_scale(X, feature_range=(0, 1))  # 0-1 scaling
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)

    for name, rbm_class in (("fastrbm", BernoulliRBM), ("scikit-learn", SklearnRBM)):
        rbm = rbm_class(n_components=100, learning_rate=0.06, n_iter=10, random_state=0)
        logistic = LogisticRegression(C=6000, max_iter=1000)
        # the Pipeline([("rbm", rbm), ("logistic", logistic)]) of scikit-learn's
        # example, step by step so that the RBM's own fit time shows
        start = time.perf_counter()
        features = rbm.fit_transform(X_train)
        rbm_seconds = time.perf_counter() - start
        logistic.fit(features, y_train)
        total_seconds = time.perf_counter() - start
        accuracy = logistic.score(rbm.transform(X_test), y_test)
        print(f"{name:13s} test accuracy {accuracy:.4f}   RBM fit {rbm_seconds:5.1f} s, "
              f"with the logistic regression {total_seconds:5.1f} s")


if __name__ == "__main__":
    main()
