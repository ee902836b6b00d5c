"""Datasets that need no download: scikit-learn's digits and the WGAN-GP paper's toy points."""
import math

import numpy as np
import tensorflow as tf

from wgan_tf.errors import ConfigError

TOY_DATASETS = ("8gaussians", "25gaussians", "swissroll")
# ``digits:test`` is every HELD_OUT_EVERY-th digit (the images the digits classifier of
# wgan_tf.metrics never trains on), ``digits:train`` the others, ``digits`` all of them.
DIGITS_SPLITS = ("train", "test")
HELD_OUT_EVERY = 5


def _check_size(image_size):
    if image_size < 1 or image_size & (image_size - 1):
        raise ConfigError(f"image size must be a power of two, got {image_size}")


def digits_array(image_size=64, channels=3, split=None):
    """The 1797 scikit-learn digits as uint8 ``[N, size, size, channels]`` (white on black), and
    their labels: all of them, or the ``split`` "train" or "test" (``DIGITS_SPLITS``)."""
    from sklearn.datasets import load_digits

    _check_size(image_size)
    bunch = load_digits()
    images = (bunch.images / 16.0 * 255.0).astype(np.float32)[..., None]  # 8x8, 0..16
    images = tf.image.resize(images, (image_size, image_size), method="bilinear")
    images = tf.repeat(images, channels, axis=-1) if channels > 1 else images
    images = np.round(np.clip(images.numpy(), 0, 255)).astype(np.uint8)
    if split is None:
        return images, bunch.target
    if split not in DIGITS_SPLITS:
        raise ConfigError(f"unknown dataset digits:{split}; use digits, digits:train or "
                          "digits:test")
    held_out = np.arange(len(images)) % HELD_OUT_EVERY == 0
    keep = held_out if split == "test" else ~held_out
    return images[keep], bunch.target[keep]


def scale_to_unit(images):
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def shuffled_batches(num_examples, batch_size, seed, skip_batches):
    """Endless batches of example indices, each epoch a new permutation under ``seed``.

    Skipping works on indices, so resuming at batch N costs no decoding.
    """
    indices = (tf.data.Dataset.range(num_examples)
               .shuffle(num_examples, seed=seed, reshuffle_each_iteration=True)
               .repeat()
               .batch(batch_size, drop_remainder=True))
    return indices.skip(skip_batches)


def batch_rows(batches, rows):
    """``batches`` (each element a tensor or a tuple of them, batched along dimension 0) cut to
    rows ``start:stop``; unchanged for ``rows=None``."""
    if rows is None:
        return batches
    start, stop = rows
    return batches.map(lambda *parts: tuple(part[start:stop] for part in parts)
                       if len(parts) > 1 else parts[0][start:stop])


DIGIT_NAMES = [str(d) for d in range(10)]


def digits(image_size=64, batch_size=64, channels=3, seed=0, skip_batches=0, rows=None,
           split=None, labels=False):
    """Endless batches of digits (with ``labels``: (images, int32 labels) batches)."""
    images, targets = digits_array(image_size, channels, split)
    table, label_table = tf.constant(images), tf.constant(targets, tf.int32)

    def batch(idx):
        if labels:
            return scale_to_unit(tf.gather(table, idx)), tf.gather(label_table, idx)
        return scale_to_unit(tf.gather(table, idx))

    batches = batch_rows(shuffled_batches(len(images), batch_size, seed, skip_batches), rows)
    return batches.map(batch, num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=True).prefetch(tf.data.AUTOTUNE)


def gaussian_mixture(name):
    """(centres ``[K, 2]``, standard deviation) of a Gaussian-mixture toy dataset, after the
    WGAN-GP code's scaling: 8 centres on a circle of radius 2 with std 0.02, or a 5x5 grid on
    -2..2 with std 0.05, all divided by 1.414 and 2.828 respectively."""
    if name == "8gaussians":
        s = 1.0 / math.sqrt(2.0)
        unit = np.array([[1, 0], [-1, 0], [0, 1], [0, -1], [s, s], [s, -s], [-s, s], [-s, -s]])
        return 2.0 * unit / 1.414, 0.02 / 1.414
    if name == "25gaussians":
        grid = np.array([[x, y] for x in range(-2, 3) for y in range(-2, 3)], np.float64)
        return grid / 2.828, 0.05 / 2.828
    raise ConfigError(f"toy:{name} is not a Gaussian mixture; modes are defined for "
                      "toy:8gaussians and toy:25gaussians")


def toy_batch(name, batch_size, seed):
    """One batch of a WGAN-GP toy distribution (gulrajani/improved_wgan_training, gan_toy.py),
    drawn with stateless random ops from ``seed`` (shape [2] int64)."""
    keys = tf.random.experimental.stateless_split(seed, 3)
    if name in ("8gaussians", "25gaussians"):
        centers, std = gaussian_mixture(name)
        which = tf.random.stateless_uniform([batch_size], keys[0], 0, len(centers), tf.int32,
                                            alg="philox")
        noise = tf.random.stateless_normal([batch_size, 2], keys[1], stddev=std, alg="philox")
        return tf.gather(tf.constant(centers, tf.float32), which) + noise
    if name == "swissroll":
        # sklearn.datasets.make_swiss_roll(noise=0.25), columns (x, z), divided by 7.5.
        t = 1.5 * math.pi * (1.0 + 2.0 * tf.random.stateless_uniform(
            [batch_size], keys[0], alg="philox"))
        points = tf.stack([t * tf.cos(t), t * tf.sin(t)], axis=1)
        noise = tf.random.stateless_normal([batch_size, 2], keys[1], stddev=0.25, alg="philox")
        return (points + noise) / 7.5
    raise ConfigError(f"unknown toy dataset toy:{name}; choose one of "
                      + ", ".join(f"toy:{n}" for n in TOY_DATASETS))


def toy(name, batch_size=64, seed=0, skip_batches=0, rows=None):
    toy_batch(name, 1, tf.constant([0, 0], tf.int64))  # unknown names fail here, not in tf.data
    batches = tf.data.Dataset.range(skip_batches, 2**62).map(
        lambda i: toy_batch(name, batch_size, tf.stack([tf.cast(seed, tf.int64), i])))
    return batch_rows(batches, rows).prefetch(tf.data.AUTOTUNE)
