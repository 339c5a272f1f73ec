"""
Filters, reconstructions and samples of an RBM on digits
========================================================

What ``fastrbm train`` does with no arguments, in Python: a
:class:`~fastrbm.BernoulliRBM` with 100 hidden units learns scikit-learn's
8x8 digits with PCD-1, and :mod:`fastrbm.plotting` draws what it learned.
Run::

    python examples/digits_filters_samples.py

(as a plain script it writes nothing; the figures are matplotlib figures:
add ``plt.show()`` or pass ``path=`` to the plotting functions).
"""
import numpy as np
from sklearn.model_selection import train_test_split

from fastrbm import BernoulliRBM, plotting
from fastrbm.datasets import load_digits

X, y = load_digits()  # 1797 images, pixel intensities in [0, 1]
X_train, X_test = train_test_split(X, test_size=0.2, random_state=0)

# %%
# Training
# --------
# PCD-1 with 100 hidden units, 30 epochs, the command line's settings for
# digits.  ``history_`` records the reconstruction error and the one-bit
# pseudo-likelihood of a fixed subset of the training rows after every epoch.
rbm = BernoulliRBM(n_components=100, learning_rate=0.05, batch_size=10, n_iter=30,
                   random_state=0)
rbm.fit(X_train)
last = rbm.history_[-1]
print(f"epoch {last['epoch']}: reconstruction error {last['reconstruction_error']:.4f}, "
      f"pseudo-likelihood {last['pseudo_likelihood']:.2f}")
fig = plotting.plot_history(rbm)

# %%
# Filters
# -------
# Each tile is the weight vector of one hidden unit, drawn as an 8x8 image
# (every tile scaled to its own range): strokes and blobs that the unit
# responds to.
# sphinx_gallery_thumbnail_number = 2
fig = plotting.plot_filters(rbm, n_filters=100)

# %%
# Reconstructions of held-out digits
# ----------------------------------
# Odd rows: test images the model never saw; even rows: their mean-field
# reconstructions ``P(v | h)`` with ``h = P(h | v)``.
fig = plotting.plot_reconstructions(rbm, X_test, n_images=20)
error = np.mean((rbm.reconstruct(X_test) - X_test) ** 2)
print(f"mean squared reconstruction error on {len(X_test)} test images: {error:.4f}")

# %%
# Samples
# -------
# 100 Gibbs chains from random starts, 1000 steps each: the model's own
# digits.  The chains use the sampling stream of the model's random-number
# key, so they are the same on every run.
samples = rbm.sample(100, n_steps=1000)
fig = plotting.plot_samples(samples, title="100 Gibbs chains after 1000 steps")
