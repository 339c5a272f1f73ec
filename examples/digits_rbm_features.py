"""
RBM features + logistic regression, beside scikit-learn
=======================================================

The scikit-learn example "Restricted Boltzmann Machine features for digit
classification" with fastrbm as a one-line drop-in: run::

    python examples/digits_rbm_features.py

and it prints the test accuracy of fastrbm's and scikit-learn's RBM pipelines
(same settings, same split) and their fit times.
"""
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM as SklearnRBM
from sklearn.pipeline import Pipeline
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
        model = Pipeline([("rbm", rbm), ("logistic", LogisticRegression(C=6000, max_iter=1000))])
        start = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        print(f"{name:13s} test accuracy {model.score(X_test, y_test):.4f}   "
              f"fit {seconds:.1f} s")


if __name__ == "__main__":
    main()
