"""Turning generator output into pictures: uint8 conversion and sample grids (Pillow)."""
import math

import numpy as np
from PIL import Image


def to_uint8(images):
    """Images in [-1, 1] (any float array) -> uint8 [0, 255]; values outside are clipped."""
    images = np.asarray(images, dtype=np.float32)
    return np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def grid(images, columns=None, padding=2):
    """uint8 ``[N, H, W, C]`` -> one uint8 picture ``[rows*(H+p)+p, cols*(W+p)+p, C]``."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    out = np.zeros((rows * (h + padding) + padding, columns * (w + padding) + padding, c), np.uint8)
    for i, image in enumerate(images):
        y, x = padding + (i // columns) * (h + padding), padding + (i % columns) * (w + padding)
        out[y:y + h, x:x + w] = image
    return out


def save_png(picture, path, min_size=256):
    """Writes a uint8 ``[H, W, C]`` picture, enlarged with nearest-neighbour to at least
    ``min_size`` pixels wide so small samples stay visible."""
    picture = np.asarray(picture)
    image = Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture)
    scale = max(1, math.ceil(min_size / image.width))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    image.save(path)
    return path


def save_scatter(points, path, title=None, real=None):
    """A scatter plot of 2-D points (toy datasets) with matplotlib; returns it as uint8 [H, W, 3]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=2, c="tab:orange", alpha=0.4, label="real")
    ax.scatter(points[:, 0], points[:, 1], s=2, c="tab:blue", label="generated")
    ax.set(xlim=(-2.5, 2.5), ylim=(-2.5, 2.5), aspect="equal", title=title)
    fig.canvas.draw()
    picture = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    fig.savefig(path)
    plt.close(fig)
    return picture
