"""
Real-valued data: a Gaussian-Bernoulli RBM
==========================================

:class:`~fastrbm.GaussianBernoulliRBM` models real numbers (here the 13
chemical measurements of scikit-learn's wine data) with Gaussian visible
units.  With 12 hidden units the partition function is exact
(:func:`fastrbm.evaluation.log_partition_exact` sums over the 4096 hidden
states), so the test log-likelihood is exact too, and we compare it with an
independent baseline: one Gaussian per feature, fitted to the training rows.
Run::

    python examples/gaussian_real_data.py
"""
import numpy as np
from scipy.stats import norm
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

from fastrbm import GaussianBernoulliRBM, evaluation

X, y = load_wine(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                    stratify=y)

# %%
# The baseline: independent Gaussians
# -----------------------------------
# The log-density of a test row under one normal distribution per feature
# with the training mean and standard deviation.  An RBM with no hidden
# units and unit sigma is exactly this model, so a good RBM should beat it.
mean, std = X_train.mean(axis=0), X_train.std(axis=0)
baseline = norm.logpdf(X_test, mean, std).sum(axis=1).mean()
print(f"independent Gaussians: mean test log-density {baseline:.2f} nats per row")

# %%
# Fixed and learned standard deviations
# -------------------------------------
# The estimator standardises the data itself (``mean_``, ``scale_``).  With
# ``sigma='learn'`` it also learns how much of each feature's spread the
# hidden units leave unexplained.
for sigma in ("fixed", "learn"):
    grbm = GaussianBernoulliRBM(n_components=12, learning_rate=0.005, batch_size=10,
                                n_iter=200, momentum=0.5, sigma=sigma, random_state=0)
    grbm.fit(X_train)
    log_z = evaluation.log_partition_exact(grbm)
    test = evaluation.log_likelihood(grbm, X_test, log_z=log_z).mean()
    train = evaluation.log_likelihood(grbm, X_train, log_z=log_z).mean()
    print(f"sigma={sigma!r}: mean log-density train {train:.2f}, test {test:.2f} nats per row; "
          f"sigma_ from {grbm.sigma_.min():.2f} to {grbm.sigma_.max():.2f}")

# %%
# Features for a classifier
# -------------------------
# ``transform`` takes data on its original scale and gives ``P(h = 1 | x)``;
# the hidden units were learned without the labels.
from sklearn.linear_model import LogisticRegression  # noqa: E402

clf = LogisticRegression(max_iter=1000).fit(grbm.transform(X_train), y_train)
print(f"logistic regression on 12 hidden units: test accuracy "
      f"{clf.score(grbm.transform(X_test), y_test):.3f}")
