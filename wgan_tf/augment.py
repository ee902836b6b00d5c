"""Differentiable augmentation for small datasets: DiffAugment (Zhao, Liu, Lin, Zhu, Han 2020).

A critic trained on a few thousand images memorises them, and its gradient stops teaching the
generator. DiffAugment applies the same family of random, differentiable transformations T to real
and to generated images in every critic update (f(T(x)) against f(T(G(z)))) and in every generator
update (f(T(G(z)))), so the critic never sees an un-augmented image, and the generator's gradient
passes through T. The transformations are the paper's three policies, applied in this order:

- ``color``: brightness + U[-0.5, 0.5); saturation (distance from the pixel's channel mean) times
  U[0, 2); contrast (distance from the image's mean) times U[0.5, 1.5).
- ``translation``: a shift of up to 1/8 of the image size in each direction (an integer number of
  pixels, uniform), the uncovered border filled with zeros (mid-grey on [-1, 1] images).
- ``cutout``: a square of half the image size, centred uniformly, set to zero.

Each image gets its own transformation. The random numbers (``draw``) are drawn for the *global*
batch by the training step's ``draw_noise`` from counter-based streams (``wgan_tf.rng``), like the
prior samples: a resumed run and any number of replicas apply the same transformations.
"""
import tensorflow as tf

from wgan_tf import rng
from wgan_tf.config import parse_augment as parse  # noqa: F401 (the module's public parser)
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5
# Per image: brightness, saturation, contrast, shift y, shift x, cutout centre y, centre x.
_NUMBERS = 7


def draw(global_batch, seed, stream, counter, lane):
    """The random numbers of one augmented batch: U[0, 1) float32 ``[global_batch, 7]``."""
    return rng.uniform([global_batch, _NUMBERS], seed, stream, counter, lane)


def augment(images, numbers, policies):
    """``images`` ``[B, H, W, C]`` transformed by ``policies`` with this batch's rows of ``draw``."""
    x = images
    if "color" in policies:
        x = _color(x, numbers[:, 0:3])
    if "translation" in policies:
        x = _translate(x, numbers[:, 3:5])
    if "cutout" in policies:
        x = _cutout(x, numbers[:, 5:7])
    return x


def _per_image(values):
    return tf.reshape(tf.cast(values, tf.float32), [-1, 1, 1, 1])


def _color(x, u):
    x = x + _per_image(u[:, 0] - 0.5)
    pixel_mean = tf.reduce_mean(x, axis=3, keepdims=True)
    x = (x - pixel_mean) * _per_image(2.0 * u[:, 1]) + pixel_mean
    image_mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - image_mean) * _per_image(u[:, 2] + 0.5) + image_mean


def _uniform_int(u, low, high):
    """Integers uniform in [low, high] from U[0, 1) numbers."""
    return tf.minimum(tf.cast(tf.floor(u * tf.cast(high - low + 1, tf.float32)), tf.int32),
                      high - low) + low


def _shift(x, shifts, axis):
    """Each image moved by ``shifts[b]`` pixels along ``axis`` (1: rows, 2: columns), zeros
    coming in."""
    size = tf.shape(x)[axis]
    source = tf.range(size)[None, :] - shifts[:, None]  # [B, size]
    inside = (source >= 0) & (source < size)
    moved = tf.gather(x, tf.clip_by_value(source, 0, size - 1), axis=axis, batch_dims=1)
    mask_shape = [-1, size, 1, 1] if axis == 1 else [-1, 1, size, 1]
    return moved * tf.reshape(tf.cast(inside, x.dtype), mask_shape)


def _translate(x, u):
    size = x.shape[1]
    limit = int(size * TRANSLATION_RATIO + 0.5)
    x = _shift(x, _uniform_int(u[:, 0], -limit, limit), axis=1)
    return _shift(x, _uniform_int(u[:, 1], -limit, limit), axis=2)


def _cutout(x, u):
    size = x.shape[1]
    cut = int(size * CUTOUT_RATIO + 0.5)
    # The centre ranges over [0, size - 1] (and size itself for even cuts, as in the paper's
    # code), so the square may hang over the border.
    centre_high = size - (cut % 2)
    top = _uniform_int(u[:, 0], 0, centre_high) - cut // 2
    left = _uniform_int(u[:, 1], 0, centre_high) - cut // 2
    index = tf.range(size)[None, :]
    rows = (index >= top[:, None]) & (index < top[:, None] + cut)  # [B, size]
    columns = (index >= left[:, None]) & (index < left[:, None] + cut)
    hole = rows[:, :, None] & columns[:, None, :]  # [B, size, size]
    return x * tf.cast(~hole, x.dtype)[..., None]
