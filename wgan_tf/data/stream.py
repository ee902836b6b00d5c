"""From a source's items to an endless, deterministic, resumable stream of image batches.

Batch ``j`` of a stream is a function of the seed and ``j`` alone, so a run resumed with
``skip_batches=j`` sees exactly the batches an uninterrupted run would have seen:

- Random-access sources (folders, LMDB) lay epochs end to end; epoch ``e`` is a permutation of the
  items keyed on ``(seed, e)`` (``index_shuffle``: no buffer, no state), so skipping ``j`` batches
  is arithmetic: the stream starts at position ``j * batch_size``.
- Sequential sources (TFDS) read records in the dataset's order through a shuffle buffer seeded
  by ``(seed, e)``; whole epochs are skipped arithmetically, the rest of the way by reading but not
  decoding records.

With ``rows=(start, stop)`` only those rows of each batch are looked up and decoded (the batch's
other rows are some other worker's). Each batch is decoded on its own: a file that does not decode is dropped from its batch and its
slot takes a copy of another image of the same batch, so one bad file never shifts later batches
or stops training. Skips are counted in an ``InputReport``.
"""
import hashlib
import json
import logging
import os

import numpy as np
import tensorflow as tf

from wgan_tf.data import images
from wgan_tf.data.builtin import batch_rows, scale_to_unit

log = logging.getLogger("wgan_tf.data")

_FOREVER = 2**62
_CACHE_CHUNK = 256  # images per tf.data element while a cache is written


def positions(count, batch_size, seed, skip_batches):
    """Endless batches ``[batch_size]`` of item indices in ``[0, count)``: epoch after epoch, each a
    fresh permutation keyed on ``(seed, epoch)``, starting at batch ``skip_batches``."""
    count = tf.constant(count, tf.int64)
    seed = tf.constant(seed, tf.int64)

    def item(position):  # per element: the op rejects a batch of [2] seeds in TF 2.21
        return tf.random.experimental.index_shuffle(
            position % count, tf.stack([seed, position // count]), count - 1)

    return (tf.data.Dataset.range(skip_batches * batch_size, _FOREVER)
            .map(item)
            .batch(batch_size))


def decode_batch(sources, read, image_size, channels):
    """Decode what decodes among one batch's ``sources``: (kept positions int32 ``[k]``, uint8
    images ``[k, size, size, channels]``, original sizes int32 ``[k, 2]``).

    ``read(source)`` gives the encoded bytes (a file path is read, LMDB and TFDS bytes pass as
    they are). ``ignore_errors`` drops what fails to read or decode, one image at a time.
    """
    def one(position, source):
        image = images.decode(read(source))
        return position, images.fit(image, image_size, channels), tf.shape(image)[:2]

    count = tf.size(sources)
    kept = (tf.data.Dataset.from_tensor_slices((tf.range(count), sources))
            .map(one)
            .ignore_errors()
            .batch(tf.cast(count, tf.int64)))
    nothing = tf.data.Dataset.from_tensors((
        tf.zeros([0], tf.int32),
        tf.zeros([0, image_size, image_size, channels], tf.uint8),
        tf.zeros([0, 2], tf.int32)))
    # An all-bad batch yields no element; `nothing` stands in so that there is always one.
    return kept.concatenate(nothing).take(1).get_single_element()


def dropped(names, kept):
    """Names of the batch members not in ``kept``."""
    missing = tf.reduce_all(tf.not_equal(tf.range(tf.size(names))[:, None], kept[None, :]), axis=1)
    return tf.boolean_mask(names, missing)


def note(report, names, kept, sizes, image_size):
    """Tell ``report`` about a batch's unreadable and upscaled images; returns an op to wait on.
    Python is called only for batches with something to say."""
    small = tf.reduce_min(sizes, axis=1) < image_size

    def add(bad, small_names, small_sizes):
        report.add(bad, small_names, small_sizes)
        return np.int64(0)

    return tf.cond(
        tf.logical_or(tf.size(kept) < tf.size(names), tf.reduce_any(small)),
        lambda: tf.numpy_function(add, [dropped(names, kept), tf.boolean_mask(
            tf.gather(names, kept), small), tf.boolean_mask(sizes, small)], tf.int64),
        lambda: tf.constant(0, tf.int64))


def fill(kept_images, batch_size, after=(), kept_labels=None):
    """float32 ``[batch_size, ...]`` in [-1, 1]: the kept images, then copies of them in order
    where images were dropped; with ``kept_labels``, (those images, their int32 labels). Fails
    only when a whole batch was unreadable."""
    count = tf.shape(kept_images)[0]
    check = tf.debugging.assert_positive(
        count, message="every image of a batch failed to decode: the data is mostly unreadable")
    with tf.control_dependencies([check, *after]):
        order = tf.range(batch_size) % count
        images = scale_to_unit(tf.gather(kept_images, order))
        if kept_labels is None:
            return images
        return images, tf.cast(tf.gather(kept_labels, order), tf.int32)


def finish(batches, fn):
    """``batches.map(fn)`` decoding several batches at once, in order, and prefetching."""
    return (batches.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(tf.data.AUTOTUNE))


def random_access(items, image_size, batch_size, channels, seed, skip_batches, report,
                  cache=None, rows=None, labels=None):
    """The stream of a random-access source.

    ``items`` has ``count``, ``lookup(indices) -> (names, sources)`` (tf ops on a ``[n]`` int64
    batch), ``read(source) -> bytes`` (tf op) and ``identity`` (JSON-able, changes when the data
    does; it keys the disk cache). With ``cache`` (a directory), every item is decoded once into
    a uint8 array there, and later epochs and runs only gather from it. With ``labels`` (an int
    array, one label per item), the stream is of (images, labels) batches.
    """
    indices = batch_rows(positions(items.count, batch_size, seed, skip_batches), rows)
    batch_size = _rows_per_batch(batch_size, rows)
    label_table = None if labels is None else tf.constant(labels, tf.int32)

    def kept_labels(idx, kept):
        return None if label_table is None else tf.gather(label_table, tf.gather(idx, kept))

    if cache:
        table, readable = cached(items, image_size, channels, cache, report)

        def gather(idx):
            kept = np.flatnonzero(readable[idx]).astype(np.int32)
            return np.asarray(table[idx[kept]]), kept

        def from_cache(idx):
            kept_images, kept = tf.numpy_function(gather, [idx], (tf.uint8, tf.int32))
            kept_images.set_shape([None, image_size, image_size, channels])
            kept.set_shape([None])
            return fill(kept_images, batch_size, kept_labels=kept_labels(idx, kept))

        return finish(indices, from_cache)

    def decoded(idx):
        names, sources = items.lookup(idx)
        kept, kept_images, sizes = decode_batch(sources, items.read, image_size, channels)
        return fill(kept_images, batch_size, [note(report, names, kept, sizes, image_size)],
                    kept_labels(idx, kept))

    return finish(indices, decoded)


def sequential(records, count, image_size, batch_size, channels, seed, skip_batches, report,
               shuffle_buffer, rows=None):
    """The stream of a sequential source: ``records`` is one epoch of ``(name, encoded bytes)``
    (or ``(name, encoded bytes, label)``: a stream of (images, labels) batches) in a fixed order,
    ``count`` records long."""
    first_epoch, offset = divmod(skip_batches * batch_size, count)

    def epoch(e):
        shuffle_seed = tf.random.stateless_uniform(
            [], tf.stack([tf.constant(seed, tf.int64), e]), 0, 2**31 - 1, tf.int64, alg="philox")
        # The order must be a function of (seed, epoch) alone. tf.data pairs an op seed with the
        # global seed that keras.utils.set_random_seed sets, which would make it depend on that
        # too, and with a global seed of 0 a tensor op seed fails outright (TF 2.21 compares the
        # pair with (0, 0) in Python): the shuffle is made as if no global seed were set.
        graph = tf.compat.v1.get_default_graph()
        global_seed, graph.seed = graph.seed, None
        try:
            return records.shuffle(shuffle_buffer, seed=shuffle_seed)
        finally:
            graph.seed = global_seed

    batches = (tf.data.Dataset.range(first_epoch, _FOREVER)
               .flat_map(epoch)
               .skip(offset)
               .batch(batch_size, drop_remainder=True))
    # Every record is read, to keep the order; only this reader's rows are decoded.
    batches = batch_rows(batches, rows)
    batch_size = _rows_per_batch(batch_size, rows)

    def decoded(names, encoded, labels=None):
        kept, kept_images, sizes = decode_batch(encoded, tf.identity, image_size, channels)
        return fill(kept_images, batch_size, [note(report, names, kept, sizes, image_size)],
                    None if labels is None else tf.gather(labels, kept))

    return finish(batches, decoded)


def _rows_per_batch(batch_size, rows):
    return batch_size if rows is None else rows[1] - rows[0]


def cached(items, image_size, channels, directory, report):
    """Every item decoded once into ``directory``: (uint8 memmap ``[count, size, size, channels]``,
    bool ``[count]`` readable). Reused while ``items.identity`` and the size are unchanged; the
    skips found when it was written are reported again on every use."""
    key = hashlib.sha1(json.dumps([items.identity, image_size, channels]).encode()).hexdigest()
    array_path = os.path.join(directory, f"wgan-tf-{key[:16]}.npy")
    meta_path = array_path[:-len(".npy")] + ".json"
    if not os.path.exists(meta_path):
        _write_cache(items, image_size, channels, array_path, meta_path)
    with open(meta_path, encoding="utf-8") as f:
        meta = json.load(f)
    report.add(meta["unreadable"], meta["upscaled_names"], meta["upscaled_sizes"])
    readable = np.ones(items.count, bool)
    readable[meta["unreadable_indices"]] = False
    return np.load(array_path, mmap_mode="r"), readable


def decoded_chunks(items, image_size, channels):
    """Every item of a random-access source decoded, in order, a chunk at a time (NumPy):
    (indices ``[n]``, names ``[n]``, kept positions ``[k]``, uint8 images ``[k, size, size,
    channels]``, original sizes ``[k, 2]``)."""
    def decoded(idx):
        names, sources = items.lookup(idx)
        return (idx, names) + tuple(decode_batch(sources, items.read, image_size, channels))

    chunks = tf.data.Dataset.range(items.count).batch(_CACHE_CHUNK)
    return finish(chunks, decoded).as_numpy_iterator()


def _write_cache(items, image_size, channels, array_path, meta_path):
    os.makedirs(os.path.dirname(array_path) or ".", exist_ok=True)
    log.info("caching %d images at %dx%d in %s", items.count, image_size, image_size, array_path)
    suffix = f".{os.getpid()}.tmp"
    table = np.lib.format.open_memmap(array_path + suffix, mode="w+", dtype=np.uint8,
                                      shape=(items.count, image_size, image_size, channels))

    meta = {"unreadable": [], "unreadable_indices": [], "upscaled_names": [], "upscaled_sizes": []}
    for idx, names, kept, kept_images, sizes in decoded_chunks(items, image_size, channels):
        table[idx[kept]] = kept_images
        bad = np.setdiff1d(np.arange(len(idx)), kept)
        meta["unreadable"] += [_text(n) for n in names[bad]]
        meta["unreadable_indices"] += idx[bad].tolist()
        small = sizes.min(axis=1) < image_size
        meta["upscaled_names"] += [_text(n) for n in names[kept][small]]
        meta["upscaled_sizes"] += sizes[small].tolist()
    table.flush()
    del table
    os.replace(array_path + suffix, array_path)
    with open(meta_path + suffix, "w", encoding="utf-8") as f:
        json.dump(meta, f)
    os.replace(meta_path + suffix, meta_path)  # last: its presence means the cache is complete


def _text(name):
    return name.decode("utf-8", "replace")
