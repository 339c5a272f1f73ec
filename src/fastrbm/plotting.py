"""Pictures of RBMs: filters, reconstructions, Gibbs samples, training curves.

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
