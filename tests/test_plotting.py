"""Pictures: the tiling is checked pixel by pixel; the PNGs are real PNGs."""
import sys

import numpy as np
import pytest

import fastrbm
from fastrbm import plotting

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_image_shape_for():
    assert plotting.image_shape_for(784) == (28, 28)
    assert plotting.image_shape_for(64) == (8, 8)
    assert plotting.image_shape_for(10) == (1, 10)


def test_tile_images_places_each_image():
    images = np.arange(5 * 6, dtype=float).reshape(5, 6)  # five 2x3 images
    grid = plotting.tile_images(images, (2, 3), n_cols=2, pad=1, normalize="none")
    assert grid.shape == (3 * 3 - 1, 2 * 4 - 1)
    for i, img in enumerate(images):
        r, c = divmod(i, 2)
        np.testing.assert_array_equal(grid[3 * r:3 * r + 2, 4 * c:4 * c + 3], img.reshape(2, 3))
    # padding and the empty sixth slot hold the lowest value
    assert grid[2, 0] == 0 and grid[6, 4] == 0
    each = plotting.tile_images(images, (2, 3), normalize="each")
    assert each.min() == 0 and each.max() == 1
    with pytest.raises(ValueError, match="does not match"):
        plotting.tile_images(images, (4, 4))


@pytest.fixture(scope="module")
def model_and_data():
    pytest.importorskip("matplotlib")
    X = (np.random.default_rng(0).random((100, 16)) < 0.3).astype(float)
    return fastrbm.BernoulliRBM(6, n_iter=3, random_state=0, n_jobs=1).fit(X), X


def test_pictures_are_written(tmp_path, model_and_data):
    model, X = model_and_data
    fig = plotting.plot_filters(model, image_shape=(4, 4))
    shown = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(shown, plotting.tile_images(model.components_, (4, 4)))
    paths = [tmp_path / n for n in ("f.png", "r.png", "s.png", "h.png")]
    plotting.plot_filters(model, path=paths[0])
    fig = plotting.plot_reconstructions(model, X, n_images=4, path=paths[1])
    grid = fig.axes[0].images[0].get_array()
    # top row of tiles: the data; second row: the model's reconstructions
    np.testing.assert_allclose(grid[:4, :4], X[0].reshape(4, 4))
    np.testing.assert_allclose(grid[5:9, :4], model.reconstruct(X[:1])[0].reshape(4, 4))
    plotting.plot_samples(model.sample(4, n_steps=5), path=paths[2])
    fig = plotting.plot_history(model, path=paths[3])
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_ydata(),
                               [h["reconstruction_error"] for h in model.history_])
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC


def test_empty_history():
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="history is empty"):
        plotting.plot_history([])


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"fastrbm\[plot\]"):
        plotting.plot_samples(np.zeros((2, 4)))
