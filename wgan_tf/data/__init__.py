"""Datasets for training: every source becomes an endless stream of float32 batches in [-1, 1].

``load(spec, ...)`` picks the source from the spec string:

- ``digits``: scikit-learn's bundled handwritten digits (offline), resized and scaled;
  ``digits:train`` and ``digits:test`` split them four to one (``held_out``).
- ``toy:8gaussians``, ``toy:25gaussians``, ``toy:swissroll``: 2-D points, batches ``[B, 2]``.
- ``folder:PATH``, ``lsun-lmdb:PATH`` and any TFDS name such as ``lsun/bedroom``.

Streams are deterministic under ``seed`` and start at batch ``skip_batches``, which is how a resumed
run continues exactly where it stopped: a checkpoint records how many batches it consumed. With
``rows=(start, stop)`` a stream is the same batches cut to those rows, of which only those are read
and decoded: how each worker of a multi-worker job reads its share of every global batch.
"""
import importlib
import os

from wgan_tf.data import builtin, images
from wgan_tf.data.images import InputReport
from wgan_tf.errors import ConfigError


def point_dim(spec):
    """The dimension of a point dataset (2 for ``toy:*``), or None for image datasets."""
    return 2 if spec.startswith("toy:") else None


def identity(spec, data_dir=None):
    """JSON-able data that changes when the data behind ``spec`` does: what a cache of anything
    computed from the data (reference statistics, say) is keyed by. A folder's files (names,
    sizes, modification times); an LMDB's size and modification time; otherwise the spec (and
    TFDS's data directory), whose data a name fixes."""
    if spec.startswith("folder:"):
        from wgan_tf.data.folder_source import FolderItems

        return FolderItems(os.path.abspath(os.path.expanduser(spec[len("folder:"):]))).identity
    if spec.startswith("lsun-lmdb:"):
        path = os.path.abspath(os.path.expanduser(spec[len("lsun-lmdb:"):]))
        files = sorted(os.path.join(path, name) for name in os.listdir(path)) \
            if os.path.isdir(path) else [path]
        return ["lmdb", path, [(f, os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files]]
    return [spec, data_dir]


def held_out(spec):
    """The images a run trained on ``spec`` never saw, where the package knows them
    (``digits:train`` -> ``digits:test``), else None."""
    return {"digits:train": "digits:test"}.get(spec)


def class_names(spec, data_dir=None):
    """The class names of a labelled dataset, in label order (``digits``: "0".."9"; a folder: its
    class subfolders; TFDS: its ``label`` feature's), or None where it has no labels."""
    if spec == "digits" or spec.startswith("digits:"):
        return list(builtin.DIGIT_NAMES)
    if spec.startswith("toy:") or spec.startswith("lsun-lmdb:"):
        return None
    source, target = _image_source(spec, {"data_dir": data_dir})
    return source.class_names(target, data_dir)


def load(spec, image_size=64, batch_size=64, channels=3, seed=0, skip_batches=0, rows=None,
         labels=False, **options):
    """A ``tf.data.Dataset`` of float32 batches ``[batch_size, image_size, image_size, channels]``
    in [-1, 1] (``[batch_size, 2]`` for ``toy:`` specs), repeating forever.

    ``rows=(start, stop)``: rows ``start:stop`` of each of those batches, and only those are read
    and decoded (``wgan_tf.distribute.split_batches`` gives each worker its rows this way).

    ``labels``: batches of (images, int32 labels ``[batch_size]``), for conditional models; a
    ConfigError where the data has no labels (``class_names`` tells).

    ``options`` go to the image sources (``None`` means unset); one that does not apply to the
    source is an error:

    - ``report``: an ``InputReport`` that counts unreadable files (skipped) and upscaled images;
      keep it to show ``report.summary()`` in the training log. Default: a fresh one, which still
      logs warnings on the ``wgan_tf.data`` logger.
    - ``num_shards``, ``shard_index``: this input worker's share of the data.
    - ``cache`` (folder, LMDB): a directory where every image is decoded once, for small sets.
    - ``data_dir``, ``manual_dir``, ``download``, ``split``, ``shuffle_buffer`` (TFDS).
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be positive, got {batch_size}")
    if channels not in (1, 3):
        raise ConfigError(f"channels must be 1 or 3, got {channels}")
    if rows is not None:
        rows = tuple(rows)
        if len(rows) != 2 or not 0 <= rows[0] < rows[1] <= batch_size:
            raise ConfigError(f"rows must be (start, stop) with 0 <= start < stop <= batch size "
                              f"{batch_size}, got {rows}")
    if spec == "digits" or spec.startswith("digits:"):
        return builtin.digits(image_size, batch_size, channels, seed, skip_batches, rows,
                              split=spec.partition(":")[2] or None, labels=labels)
    if spec.startswith("toy:"):
        if labels:
            raise ConfigError(f"{spec} is 2-D points without labels; a conditional model "
                              "needs labelled images")
        return builtin.toy(spec[len("toy:"):], batch_size, seed, skip_batches, rows)
    source, target = _image_source(spec, options)
    images.check_image_size(image_size)
    if skip_batches < 0:
        raise ConfigError(f"skip_batches must be >= 0, got {skip_batches}")
    options = {name: value for name, value in options.items() if value is not None}
    unknown = sorted(set(options) - set(source.OPTIONS))
    if unknown:
        raise ConfigError(f"option {', '.join(unknown)} does not apply to {spec}; it takes "
                          f"{', '.join(source.OPTIONS)}")
    num_shards, shard_index = options.get("num_shards", 1), options.get("shard_index", 0)
    if not 0 <= shard_index < num_shards:
        raise ConfigError(f"shard_index must be in [0, num_shards), got {shard_index} of "
                          f"{num_shards}")
    options.setdefault("report", InputReport())
    extra = {"labels": True} if labels else {}
    return source.load(target, image_size, batch_size, channels, seed, skip_batches, rows=rows,
                       **options, **extra)


def _image_source(spec, options):
    """(source module, its argument) for an image dataset spec."""
    for prefix, module in (("folder:", "folder_source"), ("lsun-lmdb:", "lmdb_source")):
        if spec.startswith(prefix):
            if not spec[len(prefix):]:
                raise ConfigError(f"{prefix}PATH needs a path")
            return (importlib.import_module(f"wgan_tf.data.{module}"),
                    os.path.expanduser(spec[len(prefix):]))
    if spec:
        from wgan_tf.data import tfds_source  # imports tensorflow_datasets: only when needed

        if tfds_source.knows(spec, options.get("data_dir")):
            return tfds_source, spec
    raise ConfigError(
        f"unknown dataset {spec!r}; use digits (or digits:train, digits:test), toy:8gaussians, "
        "toy:25gaussians, toy:swissroll, folder:PATH, lsun-lmdb:PATH or a TFDS name such as "
        "lsun/bedroom")
