"""``folder:PATH``: every image file below PATH (jpg, jpeg, png, webp, bmp, gif; any depth).

Files are listed once, sorted, so item ``i`` is the same file on every run; they are read and
decoded only when a batch needs them.

Labels, where a feature needs them (a classifier for evaluation, a conditional model): the class of
an image is the folder directly below PATH that holds it (``PATH/tulip/123.jpg`` is a "tulip"),
classes numbered in sorted order of their names. A folder with images directly in PATH, or with a
single class, has no labels.
"""
import os

import numpy as np
import tensorflow as tf

from wgan_tf.data import images, stream
from wgan_tf.errors import ConfigError

OPTIONS = ("report", "cache", "num_shards", "shard_index")

_SNIFF = 16  # files checked for image bytes when the folder is listed


class FolderItems:
    """The image files of one shard of a folder, by index (see ``stream.random_access``).
    Shard ``k`` of ``n`` holds files ``k, k + n, ...`` of the sorted list."""

    read = staticmethod(tf.io.read_file)

    def __init__(self, root, num_shards=1, shard_index=0):
        names = _image_files(root)[shard_index::num_shards]
        if not names:
            raise ConfigError(f"shard {shard_index} of {num_shards} of {root} has no images")
        paths = [os.path.join(root, name) for name in names]
        if not any(_starts_like_image(path) for path in paths[:_SNIFF]):
            raise ConfigError(f"no readable images in {root}: the first files are not images "
                              f"(e.g. {names[0]})")
        self.count = len(names)
        self._files = list(zip(names, paths))
        self._names, self._paths = tf.constant(names), tf.constant(paths)
        self._where = [os.path.abspath(root), num_shards, shard_index]

    @property
    def contents(self):
        """Names and sizes: the photographs themselves, wherever they were copied to (what the
        evaluation classifier is keyed by)."""
        return [(name, _size_and_mtime(path)[0]) for name, path in self._files]

    @property
    def identity(self):
        """Names, sizes and modification times: what a disk cache must match."""
        return ["folder", *self._where,
                [(name, *_size_and_mtime(path)) for name, path in self._files]]

    def lookup(self, indices):
        return tf.gather(self._names, indices), tf.gather(self._paths, indices)

    def labels(self):
        """(class names, int64 label of every item), or None where the folder has no labels."""
        tops = [name.split(os.sep, 1) for name, _ in self._files]
        if any(len(parts) == 1 for parts in tops):
            return None
        class_names = sorted({parts[0] for parts in tops})
        if len(class_names) < 2:
            return None
        index = {name: i for i, name in enumerate(class_names)}
        return class_names, np.array([index[parts[0]] for parts in tops], np.int64)


def labelled_images(path, image_size, channels):
    """Every readable image of the folder with its label, decoded in memory (for small labelled
    sets, such as the training data of an evaluation classifier): (uint8 ``[N, size, size,
    channels]``, int64 labels ``[N]``, class names). A ConfigError where the folder has no
    labels."""
    items = FolderItems(path)
    labelled = items.labels()
    if labelled is None:
        raise ConfigError(no_labels(path))
    class_names, labels = labelled
    kept_images, kept_labels = [], []
    for idx, _, kept, chunk_images, _ in stream.decoded_chunks(items, image_size, channels):
        kept_images.append(chunk_images)
        kept_labels.append(labels[idx[kept]])
    return np.concatenate(kept_images), np.concatenate(kept_labels), class_names


def load(path, image_size, batch_size, channels, seed, skip_batches, report, cache=None,
         num_shards=1, shard_index=0, rows=None, labels=False):
    items = FolderItems(path, num_shards, shard_index)
    item_labels = None
    if labels:
        labelled = items.labels()
        if labelled is None:
            raise ConfigError(no_labels(path))
        item_labels = labelled[1]
    return stream.random_access(items, image_size, batch_size, channels, seed, skip_batches,
                                report, cache, rows, item_labels)


def class_names(path, data_dir=None):
    """The folder's class names (label order), or None where it has no labels. (``data_dir``:
    TFDS's, unused here.)"""
    labelled = FolderItems(path).labels()
    return None if labelled is None else labelled[0]


def no_labels(path):
    return (f"{path} has no class labels: they are the folders directly below it "
            "(PATH/CLASS/image.jpg), at least two of them, with no images beside them")


def _image_files(root):
    """Sorted paths, relative to ``root``, of the files with an image extension below it."""
    if not os.path.isdir(root):
        raise ConfigError(f"no such folder: {root}")
    names = [os.path.relpath(os.path.join(folder, name), root)
             for folder, _, files in os.walk(root, followlinks=True) for name in files
             if name.lower().endswith(images.IMAGE_EXTENSIONS)]
    if not names:
        raise ConfigError(f"no images ({', '.join(e[1:] for e in images.IMAGE_EXTENSIONS)}) "
                          f"below {root}")
    return sorted(names)


def _starts_like_image(path):
    try:
        with open(path, "rb") as f:
            return images.looks_like_image(f.read(16))
    except OSError:
        return False


def _size_and_mtime(path):
    try:
        stat = os.stat(path)
        return stat.st_size, stat.st_mtime_ns
    except OSError:
        return None, None
