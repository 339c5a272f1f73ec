"""
A Deep Belief Network classifier
================================

Greedy RBM pretraining, then fine-tuning by backpropagation.

Run::

    python examples/dbn_classifier.py

It trains ``fastrbm.DBNClassifier`` on scikit-learn's digits and prints the
test accuracy; the same model from the command line is::

    fastrbm train --model dbn-classifier --hidden-layer-sizes 100,50
"""
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import fastrbm

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.2,
                                                    random_state=0, stratify=y)
clf = fastrbm.DBNClassifier(hidden_layer_sizes=(100, 50), max_iter=20, random_state=0,
                            rbm_params={"n_iter": 10})
clf.fit(X_train, y_train)
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")
