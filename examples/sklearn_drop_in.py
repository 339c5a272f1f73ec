"""
A drop-in for scikit-learn's BernoulliRBM
=========================================

``fastrbm.BernoulliRBM`` in place of ``sklearn.neural_network.BernoulliRBM``.

Change one import and everything else stays: the same constructor arguments
and fitted attributes, inside a scikit-learn Pipeline.  Run::

    python examples/sklearn_drop_in.py

It prints the test accuracy of RBM features + logistic regression
on scikit-learn's digits, and saves the fitted RBM as a model file that
loads without pickle.
"""
import tempfile

from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

# was: from sklearn.neural_network import BernoulliRBM
from fastrbm import BernoulliRBM, load_model, save_model

X, y = load_digits(return_X_y=True)
X = X / 16.0  # RBM inputs are in [0, 1]

X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
pipe = Pipeline([
    ("rbm", BernoulliRBM(n_components=100, learning_rate=0.06, n_iter=10, random_state=0)),
    ("logistic", LogisticRegression(C=10, max_iter=500)),
])
pipe.fit(X_train, y_train)
print(f"test accuracy of RBM features + logistic regression: {pipe.score(X_test, y_test):.3f}")

rbm = pipe.named_steps["rbm"]
with tempfile.TemporaryDirectory() as tmp:
    path = save_model(rbm, f"{tmp}/rbm.npz")
    same = load_model(path)
    print(f"saved to and reloaded from {path}: identical features: "
          f"{(same.transform(X) == rbm.transform(X)).all()}")
