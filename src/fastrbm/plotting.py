"""Pictures of RBMs: filters, reconstructions, Gibbs samples, training curves,
and for sequence models weight heat maps and site statistics.

matplotlib is an optional dependency (``pip install "fastrbm[plot]"``); it is
imported when a function here is first called, with the non-interactive Agg
backend so that pictures can be written on machines without a display.
Every function returns a matplotlib ``Figure`` and, given ``path``, also
writes it as a PNG and closes it.
"""
import math

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("fastrbm's pictures need matplotlib: pip install 'fastrbm[plot]' "
                          "(or pip install matplotlib)") from None
    # Agg before pyplot: no display needed, and no GUI window pops up from the CLI
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def image_shape_for(n_features):
    """A (height, width) to show ``n_features`` pixels as: square if possible.

    Parameters
    ----------
    n_features : int
        Pixels per image.

    Returns
    -------
    shape : tuple of int
        ``(s, s)`` when ``n_features == s * s``, else ``(1, n_features)``.
    """
    side = math.isqrt(int(n_features))
    return (side, side) if side * side == n_features else (1, int(n_features))


def tile_images(images, image_shape=None, n_cols=None, pad=1, normalize="each"):
    """Arrange images (one per row) in a grid, as one 2-D array.

    Parameters
    ----------
    images : array-like of shape (n_images, n_pixels)
        Flattened images.
    image_shape : tuple of int, optional
        (height, width); default from :func:`image_shape_for`.
    n_cols : int, optional
        Tiles per row; default about sqrt(n_images).
    pad : int, default=1
        Pixels between tiles (filled with the grid's lowest value).
    normalize : {'each', 'none'}, default='each'
        'each' rescales every tile to [0, 1] on its own (for weights, whose
        scales differ); 'none' keeps values as they are.

    Returns
    -------
    grid : ndarray of shape (rows * (h + pad) - pad, n_cols * (w + pad) - pad)
        The tiled picture.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 2 or images.shape[0] == 0:
        raise ValueError(f"images must be a non-empty 2-D array, got shape {images.shape}")
    n, d = images.shape
    h, w = image_shape or image_shape_for(d)
    if h * w != d:
        raise ValueError(f"image_shape {(h, w)} does not match {d} pixels per image")
    if normalize == "each":
        lo = images.min(axis=1, keepdims=True)
        span = images.max(axis=1, keepdims=True) - lo
        images = (images - lo) / np.where(span > 0, span, 1)
    n_cols = n_cols or math.ceil(math.sqrt(n))
    n_rows = math.ceil(n / n_cols)
    fill = images.min()
    grid = np.full((n_rows * (h + pad) - pad, n_cols * (w + pad) - pad), fill)
    for i, img in enumerate(images):
        r, c = divmod(i, n_cols)
        grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = img.reshape(h, w)
    return grid


def _finish(fig, path):
    if path is not None:
        fig.savefig(path, dpi=fig.dpi)
        _pyplot().close(fig)
    return fig


def _grid_figure(grid, title, path, scale=0.12, max_inches=8.0):
    plt = _pyplot()
    height, width = grid.shape
    # about 12 screen pixels per image pixel for small images, but never wider
    # or taller than max_inches (28x28 tiles would otherwise give huge PNGs)
    scale = min(scale, max_inches / max(width, height))
    fig, ax = plt.subplots(figsize=(max(2.5, width * scale), max(2.5, height * scale) + 0.4),
                           dpi=100)
    ax.imshow(grid, cmap="gray", interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _finish(fig, path)


def plot_filters(model, n_filters=100, image_shape=None, path=None):
    """Show the weights of the first hidden units as images (one tile each).

    Parameters
    ----------
    model : fitted RBM or ndarray of shape (n_components, n_features)
        The model (its ``components_``) or a weight matrix.
    n_filters : int, default=100
        How many hidden units to show (the first ones); the title says how
        many the model has when that is more.
    image_shape : tuple of int, optional
        (height, width) of one input image.
    path : str, optional
        Write a PNG there and close the figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    weights = np.asarray(getattr(model, "components_", model))
    W = weights[:n_filters]
    grid = tile_images(W, image_shape, normalize="each")
    # the title counts the model's real units, not just the tiles shown
    shown = (f"{len(W)} hidden units" if len(W) == len(weights)
             else f"the first {len(W)} of {len(weights)} hidden units")
    return _grid_figure(grid, f"weights of {shown}", path)


def plot_reconstructions(model, X, n_images=20, image_shape=None, path=None):
    """Data (odd rows) above their mean-field reconstructions (even rows).

    Parameters
    ----------
    model : fitted RBM
        Anything with ``reconstruct(X)``.
    X : array-like of shape (n_samples, n_features)
        Data in [0, 1] (or uint8); the first ``n_images`` rows are shown.
    n_images : int, default=20
        Number of data images.
    image_shape : tuple of int, optional
        (height, width) of one image.
    path : str, optional
        Write a PNG there and close the figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    data = np.asarray(X[:n_images])
    recon = np.asarray(model.reconstruct(data), dtype=np.float64)
    data = data / 255.0 if data.dtype == np.uint8 else data.astype(np.float64)
    n_cols = min(10, len(data))
    rows = []
    for start in range(0, len(data), n_cols):
        block = slice(start, start + n_cols)
        for part in (data[block], recon[block]):
            padded = np.zeros((n_cols, data.shape[1]))
            padded[:len(part)] = part
            rows.append(padded)
    grid = tile_images(np.vstack(rows), image_shape, n_cols=n_cols, normalize="none")
    return _grid_figure(grid, "data (rows 1, 3, ...) and reconstructions (rows 2, 4, ...)", path)


def plot_samples(samples, image_shape=None, title="samples", path=None):
    """Show samples (e.g. from ``model.sample``) as a grid of images.

    Parameters
    ----------
    samples : array-like of shape (n_samples, n_features)
        Visible states or probabilities in [0, 1].
    image_shape : tuple of int, optional
        (height, width) of one image.
    title : str, default='samples'
        Figure title.
    path : str, optional
        Write a PNG there and close the figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    grid = tile_images(np.asarray(samples, dtype=np.float64), image_shape, normalize="none")
    return _grid_figure(grid, title, path)


def plot_history(history, path=None):
    """Training curves from ``history_``: reconstruction error and pseudo-likelihood.

    Parameters
    ----------
    history : list of dict or fitted model
        ``model.history_`` (entries with ``epoch``, ``reconstruction_error``,
        ``pseudo_likelihood``), or the model itself.
    path : str, optional
        Write a PNG there and close the figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    history = getattr(history, "history_", history)
    if not history:
        raise ValueError("history is empty: the model was not trained for any epoch")
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    keys = [k for k in ("reconstruction_error", "pseudo_likelihood") if k in history[0]]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), dpi=100, squeeze=False)
    for ax, key in zip(axes[0], keys):
        ax.plot(epochs, [h[key] for h in history], marker="o", markersize=3)
        ax.set_xlabel("epoch")
        ax.set_title(key.replace("_", " ") + " (monitoring rows)", fontsize=9)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _finish(fig, path)


# ------------------------------------------------------------- sequences
def plot_sequence_weights(model, n_units=6, alphabet=None, path=None):
    """Heat maps (category x site) of the weights of the strongest hidden units
    of a :class:`~fastrbm.CategoricalRBM`.

    The units are ranked by the L2 norm of their weights (in the zero-sum
    gauge, which a default fit keeps, the norm does not depend on the
    arbitrary offsets of each site's weights); each map is centred on 0
    (red positive, blue negative) with its own colour scale.

    Parameters
    ----------
    model : fitted CategoricalRBM
        The model (``components_``, ``n_sites_``, ``n_categories_``).
    n_units : int, default=6
        How many units to show, strongest first.
    alphabet : str, optional
        One symbol per category, for the rows' labels (default the codes).
    path : str, optional
        Write a PNG there and close the figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    plt = _pyplot()
    W = np.asarray(model.components_, dtype=np.float64)
    L, q = int(model.n_sites_), int(model.n_categories_)
    blocks = W.reshape(len(W), L, q)
    # centred per site: any offset shared by a site's categories changes nothing
    blocks = blocks - blocks.mean(axis=2, keepdims=True)
    norms = np.sqrt((blocks ** 2).sum(axis=(1, 2)))
    order = np.argsort(norms)[::-1][:n_units]
    labels = list(alphabet) if alphabet is not None and len(alphabet) == q else [
        str(a) for a in range(q)]
    fig, axes = plt.subplots(len(order), 1, figsize=(max(6, 0.14 * L + 2), 2.1 * len(order)),
                             dpi=100, squeeze=False)
    for ax, j in zip(axes[:, 0], order):
        scale = float(np.abs(blocks[j]).max()) or 1.0
        image = ax.imshow(blocks[j].T, cmap="RdBu_r", vmin=-scale, vmax=scale, aspect="auto",
                          interpolation="nearest")
        ax.set_yticks(range(q))
        ax.set_yticklabels(labels, fontsize=5)
        ax.set_xlabel("site", fontsize=7)
        ax.tick_params(axis="x", labelsize=6)
        ax.set_title(f"hidden unit {j} (weight norm {norms[j]:.2f})", fontsize=8)
        fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01)
    fig.tight_layout()
    return _finish(fig, path)


def plot_sequence_statistics(data, samples, n_categories, weights=None, path=None):
    """Site and pair statistics of samples against the data (the usual check
    of a sequence model): one-site frequencies f_i(a) and connected two-site
    correlations f_ij(a, b) - f_i(a) f_j(b), one point per entry, with their
    Pearson r.

    Parameters
    ----------
    data : array-like of int, shape (n_sequences, n_sites)
        The data's codes.
    samples : array-like of int, shape (n_samples, n_sites)
        The model's samples (codes).
    n_categories : int
        Categories per site.
    weights : array-like of float, optional
        Weights of the data's sequences (e.g. ``sequences.sequence_weights``).
    path : str, optional
        Write a PNG there and close the figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from .sequences import connected_correlations, site_frequencies

    plt = _pyplot()
    pairs = []
    f_data = site_frequencies(data, n_categories, weights).ravel()
    f_model = site_frequencies(samples, n_categories).ravel()
    pairs.append(("one-site frequencies", f_data, f_model))
    if np.asarray(data).shape[1] > 1:
        c_data = connected_correlations(data, n_categories, weights).ravel()
        c_model = connected_correlations(samples, n_categories).ravel()
        pairs.append(("connected two-site correlations", c_data, c_model))
    fig, axes = plt.subplots(1, len(pairs), figsize=(4 * len(pairs), 4), dpi=100,
                             squeeze=False)
    for ax, (name, x, y) in zip(axes[0], pairs):
        r = float(np.corrcoef(x, y)[0, 1]) if np.std(x) > 0 and np.std(y) > 0 else float("nan")
        ax.scatter(x, y, s=2, alpha=0.4, linewidths=0)
        low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([low, high], [low, high], color="gray", linewidth=0.8)
        ax.set_xlabel("data")
        ax.set_ylabel("samples")
        ax.set_title(f"{name}\nPearson r = {r:.3f}", fontsize=9)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _finish(fig, path)
