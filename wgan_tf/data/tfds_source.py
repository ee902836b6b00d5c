"""TFDS image datasets (``lsun/bedroom``, ``celeb_a``, ``mnist``, ...) read through ``tfds``.

Images are read still encoded (``SkipDecoding``) and go through the same decoding, fitting and
bad-record handling as every other source. Nothing is downloaded unless asked: a dataset that is
not prepared is built from TFDS's manual-download directory when files are there, from the network
with ``download=True``, and otherwise the error says which files to fetch and where to put them.
"""
import os

import tensorflow as tf
import tensorflow_datasets as tfds

from wgan_tf.data import stream
from wgan_tf.errors import ConfigError

OPTIONS = ("report", "data_dir", "manual_dir", "download", "split", "shuffle_buffer",
           "num_shards", "shard_index")


def knows(spec, data_dir=None):
    """Whether ``spec`` (``name[/config][:version]``) names a TFDS dataset: one registered with
    TFDS, or one prepared in ``data_dir`` by other code (``tfds.dataset_builders``, a user's
    builder)."""
    if spec.split(":")[0].split("/")[0] in tfds.list_builders(with_community_datasets=False):
        return True
    try:
        tfds.builder(spec, data_dir=data_dir)
    except Exception:  # not registered and no prepared files: TFDS raises several kinds
        return False
    return True


def load(name, image_size, batch_size, channels, seed, skip_batches, report, data_dir=None,
         manual_dir=None, download=False, split="train", shuffle_buffer=10_000, num_shards=1,
         shard_index=0, rows=None, labels=False):
    """The ``split`` of TFDS dataset ``name`` as an endless stream of batches (see
    ``stream.sequential``). ``num_shards > 1`` gives this worker its even share of the split.
    ``labels``: (images, labels) batches, from the dataset's ``label`` feature."""
    builder = _builder(name, data_dir)
    key = _image_feature(builder, name)
    label_key = _label_feature(builder, name) if labels else None
    if num_shards > 1:
        split = tfds.even_splits(split, n=num_shards, drop_remainder=True)[shard_index]
    records = _records(builder, name, split, key, manual_dir, download, label_key)
    count = int(records.cardinality())
    if count < 0:  # unknown to tf.data: ask the metadata
        count = builder.info.splits[split].num_examples
    if count == 0:
        raise ConfigError(f"{name} split {split} has no examples")
    return stream.sequential(records, count, image_size, batch_size, channels, seed,
                             skip_batches, report, shuffle_buffer, rows)


def _builder(name, data_dir):
    try:
        return tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # unknown config or version: TFDS raises ValueError or AssertionError
        raise ConfigError(f"TFDS dataset {name!r}: {_first_line(e)}") from e


def _image_feature(builder, name):
    for key, feature in builder.info.features.items():
        if isinstance(feature, tfds.features.Image):
            return key
    raise ConfigError(f"TFDS dataset {name} has no image feature")


def class_names(name, data_dir=None):
    """The names of the dataset's ``label`` classes, or None where it has no ``label``."""
    feature = _class_label(_builder(name, data_dir))
    return None if feature is None else list(feature.names)


def _class_label(builder):
    features = builder.info.features
    feature = features["label"] if "label" in features else None
    return feature if isinstance(feature, tfds.features.ClassLabel) else None


def _label_feature(builder, name):
    if _class_label(builder) is None:
        raise ConfigError(f"TFDS dataset {name} has no class label feature 'label'; a "
                          "conditional model needs labelled data")
    return "label"


def _records(builder, name, split, key, manual_dir, download, label_key=None):
    """One epoch of ``(tfds_id, encoded image)`` (and the label, with ``label_key``) in the
    dataset's fixed order (TFDS shuffles records when it prepares a dataset, so the order is
    already random)."""
    def as_dataset():
        try:
            return builder.as_dataset(
                split=split, shuffle_files=False, decoders={key: tfds.decode.SkipDecoding()},
                read_config=tfds.ReadConfig(add_tfds_id=True))
        except (KeyError, ValueError) as e:  # an unknown split or a bad slice
            raise ConfigError(f"TFDS dataset {name}: {_first_line(e)}") from e

    try:
        records = as_dataset()
    except AssertionError:  # TFDS's way to say "not prepared"
        if builder.is_prepared():
            raise
        _prepare(builder, name, manual_dir, download)
        records = as_dataset()
    if label_key:
        return records.map(lambda example: (example["tfds_id"], example[key],
                                            tf.cast(example[label_key], tf.int32)))
    return records.map(lambda example: (example["tfds_id"], example[key]))


def _prepare(builder, name, manual_dir, download):
    root = os.fspath(builder.data_dir_root)
    manual_dir = manual_dir or os.path.join(root, "downloads", "manual")
    has_manual_files = os.path.isdir(manual_dir) and bool(os.listdir(manual_dir))
    if not (download or has_manual_files):
        raise ConfigError(_not_prepared(builder, name, root, manual_dir))
    try:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=manual_dir, try_download_gcs=False))
    except Exception as e:  # network, checksum, missing optional modules: TFDS raises them all
        raise ConfigError(f"could not prepare TFDS dataset {name} in {root}: "
                          f"{_first_line(e)}") from e


def _not_prepared(builder, name, root, manual_dir):
    urls = _downloads(builder)
    what = ", ".join(urls) if urls else f"the files listed at {builder.info.homepage}"
    message = (f"TFDS dataset {name} is not prepared in {root}: download {what} into "
               f"{manual_dir} and run again, or run `tfds build {name} --data_dir {root}` where "
               f"there is network access")
    if builder.name == "lsun":
        message += ("; or unzip the train archive and use lsun-lmdb:PATH (the folder holding "
                    "data.mdb), which reads LSUN's files directly")
    return message


def _downloads(builder):
    """The URLs TFDS downloads for this dataset (and config), or [] if unknown."""
    try:
        infos = builder.url_infos or {}
    except ImportError:  # TFDS 4.9.10 needs importlib_resources to find its checksum files
        infos = {}
    config = builder.builder_config.name if builder.builder_config else ""
    return sorted(url for url, info in infos.items()
                  if config in (info.filename or url.rsplit("/", 1)[-1]))


def _first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(":")
