"""``folder:PATH``: every image file below PATH (jpg, jpeg, png, webp, bmp, gif; any depth).

Files are listed once, sorted, so item ``i`` is the same file on every run; they are read and
decoded only when a batch needs them.
"""
import os

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
    def identity(self):
        """Names, sizes and modification times: what a disk cache must match."""
        return ["folder", *self._where,
                [(name, *_size_and_mtime(path)) for name, path in self._files]]

    def lookup(self, indices):
        return tf.gather(self._names, indices), tf.gather(self._paths, indices)


def load(path, image_size, batch_size, channels, seed, skip_batches, report, cache=None,
         num_shards=1, shard_index=0, rows=None):
    items = FolderItems(path, num_shards, shard_index)
    return stream.random_access(items, image_size, batch_size, channels, seed, skip_batches,
                                report, cache, rows)


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
