"""``lsun-lmdb:PATH``: LSUN's own LMDB export (``bedroom_train_lmdb/``, what the official WGAN code
reads): keys are image ids, values the encoded WebP or JPEG bytes.

The real bedroom set is 3 million images (43 GB), so nothing is loaded up front: one pass over the
keys (never the values) keeps every ``ANCHOR_EVERY``-th key, and item ``i`` is found by seeking to
the kept key before it and stepping forward. That gives the random access the shuffled,
resumable stream needs while holding 1/64 of the keys in memory.
"""
import functools
import os

import lmdb
import numpy as np
import tensorflow as tf

from wgan_tf.data import images, stream
from wgan_tf.errors import ConfigError

OPTIONS = ("report", "cache", "num_shards", "shard_index")

ANCHOR_EVERY = 64
_SNIFF = 16  # records checked for image bytes when the database is opened


class LmdbItems:
    """The records of one shard of an LMDB database, by index (see ``stream.random_access``).
    Shard ``k`` of ``n`` holds records ``k, k + n, k + 2n, ...`` in key order."""

    read = staticmethod(tf.identity)  # values are the encoded images

    def __init__(self, path, num_shards=1, shard_index=0):
        if not os.path.exists(path):
            raise ConfigError(f"no such LMDB database: {path}")
        path = os.path.abspath(path)
        self._env = _open(path)
        _check_lsun(self._env, path)
        total, self._anchors, last_key = _index(path, _stamp(path))
        self._num_shards, self._shard_index = num_shards, shard_index
        self.count = len(range(shard_index, total, num_shards))
        if not self.count:
            raise ConfigError(f"shard {shard_index} of {num_shards} of {path} is empty")
        self.identity = ["lsun-lmdb", path, total, self._anchors[0].hex(),
                         last_key.hex(), num_shards, shard_index]

    def lookup(self, indices):
        keys, values = tf.numpy_function(self._fetch, [indices], (tf.string, tf.string),
                                         stateful=False)
        return tf.ensure_shape(keys, [None]), tf.ensure_shape(values, [None])

    def _fetch(self, indices):
        keys, values = [], []
        with self._env.begin(buffers=False) as txn:  # one read transaction per batch
            cursor = txn.cursor()
            for index in indices:
                anchor, steps = divmod(int(index) * self._num_shards + self._shard_index,
                                       ANCHOR_EVERY)
                cursor.set_key(self._anchors[anchor])
                for _ in range(steps):
                    cursor.next()
                keys.append(cursor.key())
                values.append(cursor.value())
        return np.array(keys, dtype=object), np.array(values, dtype=object)


def load(path, image_size, batch_size, channels, seed, skip_batches, report, cache=None,
         num_shards=1, shard_index=0, rows=None, labels=False):
    if labels:
        raise ConfigError(f"lsun-lmdb:{path} has no class labels (LSUN's LMDB holds one scene "
                          "category); a conditional model needs labelled data")
    items = LmdbItems(path, num_shards, shard_index)
    return stream.random_access(items, image_size, batch_size, channels, seed, skip_batches,
                                report, cache, rows)


@functools.lru_cache(maxsize=None)
def _open(path):
    """The process's one handle on the database at absolute ``path`` (lmdb refuses a second)."""
    if os.path.isdir(path) and not os.path.exists(os.path.join(path, "data.mdb")):
        raise ConfigError(f"{path} is not an LMDB database: it holds no data.mdb")
    try:
        # lock=False: the export is read-only, and may sit on read-only storage.
        return lmdb.open(path, subdir=os.path.isdir(path), readonly=True, lock=False,
                         readahead=False, meminit=False)
    except lmdb.Error as e:
        raise ConfigError(f"{path} is not an LMDB database: {e}") from e


def _stamp(path):
    """When the database last changed: an index is reused only for the same stamp."""
    data_file = os.path.join(path, "data.mdb") if os.path.isdir(path) else path
    return os.stat(data_file).st_mtime_ns


@functools.lru_cache(maxsize=4)
def _index(path, stamp):
    """(number of records, every ANCHOR_EVERY-th key, the last key), in one pass over the keys.
    Kept per process: training loads its dataset again at each logging period, and the pass
    takes seconds on the 3-million-record bedroom set."""
    anchors, count, key = [], 0, b""
    with _open(path).begin() as txn:
        for count, key in enumerate(txn.cursor().iternext(keys=True, values=False), 1):
            if count % ANCHOR_EVERY == 1:
                anchors.append(key)
    return count, anchors, key


def _check_lsun(env, path):
    """LSUN's export stores encoded images as values; a database whose first records hold none
    (a Caffe datum store, named sub-databases, pickles) is something else."""
    with env.begin() as txn:
        records = [item for item, _ in zip(txn.cursor(), range(_SNIFF))]
    if not records:
        raise ConfigError(f"LMDB database {path} is empty")
    if not any(images.looks_like_image(value[:16]) for _, value in records):
        raise ConfigError(
            f"{path} is not LSUN's LMDB export: the values of its first {len(records)} records "
            f"are not encoded images (first key {records[0][0][:40]!r})")
