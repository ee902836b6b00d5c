"""Image sources: folders, LSUN's LMDB export and TFDS, on data made here; decoding of every
image kind, preprocessing against the reference pipeline, skipped bad files, clear errors,
determinism and resuming."""
import hashlib
import io
import logging
import os
import pickle

import lmdb
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from wgan_tf import data
from wgan_tf.data import images
from wgan_tf.errors import ConfigError

SIZE = 16


def encode(image, fmt, **params):
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def picture(width=40, height=30, seed=0):
    """A smooth RGB picture (decoders agree on smooth content to within a grey level)."""
    coarse = np.random.default_rng(seed).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((width, height), Image.BICUBIC)


def solid(value, width=40, height=30):
    return Image.new("RGB", (width, height), (value, value, value))


def kinds():
    """name -> encoded bytes, one of every kind a folder may hold."""
    rgb = picture()
    frames = [picture(seed=s) for s in range(3)]
    return {
        "rgb.jpg": encode(rgb, "JPEG", quality=95),
        "gray.jpeg": encode(rgb.convert("L"), "JPEG", quality=95),
        "cmyk.jpg": encode(rgb.convert("CMYK"), "JPEG", quality=95),
        "rgb.png": encode(rgb, "PNG"),
        "gray.png": encode(rgb.convert("L"), "PNG"),
        "palette.png": encode(rgb.convert("P"), "PNG"),
        "rgba.png": encode(rgb.convert("RGBA"), "PNG"),
        "rgb.webp": encode(rgb, "WEBP", lossless=True),
        "rgba.webp": encode(rgb.convert("RGBA"), "WEBP", lossless=True),
        "rgb.bmp": encode(rgb, "BMP"),
        "palette.bmp": encode(rgb.convert("P"), "BMP"),
        "animated.gif": encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
    }


BAD = {
    "truncated.jpg": kinds()["rgb.jpg"][:300],
    "truncated.png": kinds()["rgb.png"][:100],
    "empty.png": b"",
    "notes.jpg": b"not an image at all\n",
}


def write(folder, files):
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return folder


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    """Every good kind (some nested, one with an upper-case extension), the bad files, and a
    file without an image extension, which is not listed at all."""
    files = {f"sub/{name}" if i % 3 else name: content
             for i, (name, content) in enumerate(kinds().items())}
    files["sub/deeper/UPPER.JPG"] = kinds()["rgb.jpg"]
    files.update(BAD)
    files["readme.txt"] = b"hello"
    return write(tmp_path_factory.mktemp("mixed"), files)


@pytest.fixture(scope="module")
def grey_folder(tmp_path_factory):
    """12 images, each one flat grey level, so a batch tells which images it holds."""
    files = {f"{i:02d}.png": encode(solid(10 + 20 * i), "PNG") for i in range(12)}
    return write(tmp_path_factory.mktemp("grey"), files)


def levels(batch):
    """The grey level of each image of a batch of flat images."""
    return [int(round((m + 1) * 127.5)) for m in tf.reduce_mean(batch, axis=[1, 2, 3]).numpy()]


def take(dataset, count):
    return [batch.numpy() for batch in dataset.take(count)]


def assert_images(batches, batch_size, channels=3, size=SIZE):
    for batch in batches:
        assert batch.shape == (batch_size, size, size, channels)
        assert batch.dtype == np.float32
        assert batch.min() >= -1.0 and batch.max() <= 1.0


# Decoding and preprocessing


@pytest.mark.parametrize("name", sorted(kinds()))
def test_every_kind_decodes_to_rgb_like_pillow(name):
    encoded = kinds()[name]
    ours = images.decode(tf.constant(encoded)).numpy().astype(int)
    with Image.open(io.BytesIO(encoded)) as image:  # a GIF opens on its first frame
        pillows = np.asarray(image.convert("RGB")).astype(int)
    assert ours.shape == pillows.shape
    if name.endswith((".jpg", ".jpeg")):  # two JPEG decoders, neither colour-managing CMYK
        assert np.abs(ours - pillows).mean() <= 2 and np.abs(ours - pillows).max() <= 12
    else:
        np.testing.assert_array_equal(ours, pillows)


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_bytes_fail_to_decode(name):
    with pytest.raises(tf.errors.OpError):
        images.decode(tf.constant(BAD[name]))


def reference(image, size):
    """The official WGAN code: transforms.Scale(size) then transforms.CenterCrop(size), on PIL."""
    width, height = image.size
    if width < height:
        new_width, new_height = size, int(size * height / width)
    else:
        new_width, new_height = int(size * width / height), size
    image = image.resize((new_width, new_height), Image.BILINEAR)
    left, top = int(round((new_width - size) / 2.0)), int(round((new_height - size) / 2.0))
    return np.asarray(image.crop((left, top, left + size, top + size)))


@pytest.mark.parametrize("width,height,size", [
    (341, 256, 64), (256, 300, 64), (257, 100, 16), (64, 64, 64), (17, 47, 64), (47, 17, 32)])
def test_fit_matches_scale_and_centre_crop(width, height, size):
    image = picture(width, height)
    ours = images.fit(tf.constant(np.asarray(image)), size, 3).numpy()
    assert ours.shape == (size, size, 3) and ours.dtype == np.uint8
    assert np.abs(ours.astype(int) - reference(image, size)).max() <= 1
    grey = images.fit(tf.constant(np.asarray(image)), size, 1).numpy()
    assert np.abs(grey[..., 0].astype(int) - reference(image.convert("L"), size)).max() <= 2


# Folders


def test_folder_gives_batches_and_reports_every_bad_file(mixed_folder, caplog):
    report = data.InputReport()
    with caplog.at_level(logging.WARNING, logger="wgan_tf.data"):
        batches = take(data.load(f"folder:{mixed_folder}", SIZE, 8, report=report), 4)
    assert_images(batches, 8)  # 17 files: four batches cover every one of them at least once
    assert report.unreadable == len(BAD)
    assert set(report.unreadable_examples) == set(BAD)
    assert report.upscaled == 0
    assert "skipped 4 unreadable images" in report.summary()
    assert {r.getMessage() for r in caplog.records} == {
        f"skipping unreadable image {name}" for name in BAD}


def test_small_images_are_upscaled_with_one_warning(mixed_folder, caplog):
    report = data.InputReport()
    with caplog.at_level(logging.WARNING, logger="wgan_tf.data"):
        assert_images(take(data.load(f"folder:{mixed_folder}", 64, 8, report=report), 4), 8,
                      size=64)
    upscaling = [r for r in caplog.records if "smaller than the training size" in r.getMessage()]
    assert len(upscaling) == 1
    assert report.upscaled >= 13


def test_one_channel(grey_folder):
    assert_images(take(data.load(f"folder:{grey_folder}", SIZE, 4, channels=1), 2), 4, 1)


def test_each_epoch_is_a_new_permutation(grey_folder):
    seen = [levels(b) for b in take(data.load(f"folder:{grey_folder}", SIZE, 4, seed=3), 6)]
    first, second = sum(seen[:3], []), sum(seen[3:], [])
    assert sorted(first) == sorted(second) == [10 + 20 * i for i in range(12)]
    assert first != second


def test_same_seed_same_batches_other_seed_other_batches(mixed_folder):
    def run(seed):
        return np.stack(take(data.load(f"folder:{mixed_folder}", SIZE, 4, seed=seed), 5))

    assert np.array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_skip_batches_is_the_same_as_dropping_them(mixed_folder):
    spec = f"folder:{mixed_folder}"  # 17 files, 3 of them bad: batches cross epochs and skips
    whole = take(data.load(spec, SIZE, 4, seed=5), 12)
    resumed = take(data.load(spec, SIZE, 4, seed=5, skip_batches=7), 5)
    np.testing.assert_array_equal(np.stack(whole[7:]), np.stack(resumed))


def test_shards_split_the_files(grey_folder):
    shards = [sum((levels(b) for b in take(data.load(
        f"folder:{grey_folder}", SIZE, 3, num_shards=2, shard_index=k), 2)), [])
        for k in range(2)]
    assert sorted(shards[0] + shards[1]) == [10 + 20 * i for i in range(12)]


def test_disk_cache_gives_the_same_batches(mixed_folder, tmp_path):
    spec = f"folder:{mixed_folder}"
    plain = take(data.load(spec, SIZE, 4, seed=2, skip_batches=3), 6)
    first, again = data.InputReport(), data.InputReport()
    cached = take(data.load(spec, SIZE, 4, seed=2, skip_batches=3, cache=str(tmp_path),
                            report=first), 6)
    np.testing.assert_array_equal(np.stack(plain), np.stack(cached))
    written = {p: os.stat(tmp_path / p).st_mtime_ns for p in os.listdir(tmp_path)}
    assert len(written) == 2 and first.unreadable == len(BAD)
    reused = take(data.load(spec, SIZE, 4, seed=2, skip_batches=3, cache=str(tmp_path),
                            report=again), 6)
    np.testing.assert_array_equal(np.stack(plain), np.stack(reused))
    assert {p: os.stat(tmp_path / p).st_mtime_ns for p in os.listdir(tmp_path)} == written
    assert again.unreadable == len(BAD)


@pytest.mark.parametrize("make,message", [
    (lambda d: d / "missing", "no such folder"),
    (lambda d: d, r"no images \(jpg, jpeg, png, webp, bmp, gif\) below"),
    (lambda d: write(d, {"a.txt": b"x", "b/c.csv": b"y"}), "no images"),
    (lambda d: write(d, {"a.jpg": b"text", "b.png": b""}), "no readable images"),
])
def test_folder_errors_are_one_line(tmp_path, make, message):
    with pytest.raises(ConfigError, match=message) as error:
        data.load(f"folder:{make(tmp_path)}", SIZE, 4)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("spec,kwargs,message", [
    ("folder:{}", dict(image_size=48), "power of two"),
    ("folder:{}", dict(data_dir="/tmp"), "option data_dir does not apply"),
    ("folder:{}", dict(num_shards=2, shard_index=2), "shard_index"),
    ("folder:{}", dict(skip_batches=-1), "skip_batches"),
    ("folder:", {}, "needs a path"),
    ("no_such_dataset_anywhere", {}, "unknown dataset"),
    ("foo:bar", {}, "unknown dataset"),
])
def test_bad_arguments_are_config_errors(grey_folder, spec, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        data.load(spec.format(grey_folder), **{"image_size": SIZE, **kwargs})


def test_unset_options_are_ignored(grey_folder):
    data.load(f"folder:{grey_folder}", SIZE, 4, data_dir=None, cache=None)


# Rows: each worker of a multi-worker job reads its own rows of every batch


def good_lmdb(path, records=40):
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i in range(records):
            txn.put(f"{i:04x}".encode(), encode(solid(5 * i), "PNG"))
    env.close()
    return str(path)


@pytest.mark.parametrize("source", ["digits", "toy", "folder", "folder-cache", "lmdb", "tfds"])
def test_rows_are_the_same_batches_cut(source, grey_folder, tmp_path):
    """Rows read apart and put side by side are the whole batches, resumed mid-stream too.
    (Sources without unreadable files: a worker replaces one from its own rows.)"""
    import contextlib

    import tensorflow_datasets as tfds

    spec, options, size = {
        "digits": ("digits", {}, SIZE),
        "toy": ("toy:25gaussians", {}, SIZE),
        "folder": (f"folder:{grey_folder}", {}, SIZE),
        "folder-cache": (f"folder:{grey_folder}", {"cache": str(tmp_path / "cache")}, SIZE),
        "lmdb": (f"lsun-lmdb:{good_lmdb(tmp_path / 'db')}", {}, SIZE),
        "tfds": ("lsun/bedroom", {}, 64),
    }[source]
    mock = tfds.testing.mock_data(num_examples=10) if source == "tfds" else contextlib.nullcontext()
    with mock:
        def batches(rows=None):
            return take(data.load(spec, size, 4, seed=3, skip_batches=2, rows=rows, **options), 5)

        whole = batches()
        parts = [batches(rows) for rows in ((0, 1), (1, 3), (3, 4))]
    for j, batch in enumerate(whole):
        np.testing.assert_array_equal(np.concatenate([part[j] for part in parts]), batch)


@pytest.mark.parametrize("rows", [(0, 0), (2, 1), (0, 5), (-1, 2), (1, 2, 3)])
def test_bad_rows_are_config_errors(rows):
    with pytest.raises(ConfigError, match="rows must be"):
        data.load("digits", SIZE, 4, rows=rows)


# LSUN's LMDB export

RECORDS = 150  # more than two anchors' worth of keys


@pytest.fixture(scope="module")
def lsun_lmdb(tmp_path_factory):
    """LSUN's layout: hex ids -> WebP (as LSUN ships) or JPEG bytes; record 7 is garbage."""
    path = str(tmp_path_factory.mktemp("lsun") / "bedroom_train_lmdb")
    env = lmdb.open(path, map_size=1 << 26)
    with env.begin(write=True) as txn:
        for i in range(RECORDS):
            image = solid(i % 250)
            value = encode(image, "WEBP", lossless=True) if i % 2 else encode(image, "JPEG")
            txn.put(hashlib.sha1(str(i).encode()).hexdigest().encode(), b"garbage" if i == 7
                    else value)
    env.close()
    return path


def test_lmdb_lookup_reads_records_in_key_order(lsun_lmdb):
    from wgan_tf.data.lmdb_source import LmdbItems

    with lmdb.open(lsun_lmdb, readonly=True, lock=False) as env, env.begin() as txn:
        records = list(txn.cursor())
    indices = [0, 1, 63, 64, 65, 127, 128, 149, 5]
    keys, values = LmdbItems(lsun_lmdb).lookup(tf.constant(indices, tf.int64))
    assert [k.decode() for k in keys.numpy()] == [records[i][0].decode() for i in indices]
    assert list(values.numpy()) == [records[i][1] for i in indices]
    odd = LmdbItems(lsun_lmdb, num_shards=2, shard_index=1)
    assert odd.count == RECORDS // 2
    assert odd.lookup(tf.constant([0, 74], tf.int64))[0].numpy().tolist() == [
        records[1][0], records[149][0]]


def test_lmdb_batches_skip_the_bad_record(lsun_lmdb):
    report = data.InputReport()
    dataset = data.load(f"lsun-lmdb:{lsun_lmdb}", SIZE, 50, report=report)
    assert_images(take(dataset, 3), 50)  # one epoch
    bad_key = hashlib.sha1(b"7").hexdigest()
    assert report.unreadable == 1 and report.unreadable_examples == [bad_key]


def test_lmdb_resumes_exactly_and_loads_twice(lsun_lmdb):
    spec = f"lsun-lmdb:{lsun_lmdb}"
    whole = take(data.load(spec, SIZE, 32, seed=4), 8)
    resumed = take(data.load(spec, SIZE, 32, seed=4, skip_batches=5), 3)
    np.testing.assert_array_equal(np.stack(whole[5:]), np.stack(resumed))


def test_lmdb_that_is_not_lsun(tmp_path):
    env = lmdb.open(str(tmp_path / "pickles"), map_size=1 << 20)
    with env.begin(write=True) as txn:
        for i in range(3):
            txn.put(f"{i:08d}".encode(), pickle.dumps({"label": i}))
    env.close()
    with pytest.raises(ConfigError, match="not LSUN's LMDB export"):
        data.load(f"lsun-lmdb:{tmp_path / 'pickles'}", SIZE, 4)


@pytest.mark.parametrize("make,message", [
    (lambda d: d / "missing", "no such LMDB database"),
    (lambda d: write(d, {"a.jpg": kinds()["rgb.jpg"]}), "is not an LMDB database"),
    (lambda d: lmdb.open(str(d / "empty")).close() or d / "empty", "is empty"),
])
def test_lmdb_errors_are_one_line(tmp_path, make, message):
    with pytest.raises(ConfigError, match=message) as error:
        data.load(f"lsun-lmdb:{make(tmp_path)}", SIZE, 4)
    assert "\n" not in str(error.value)


# TFDS


def test_tfds_lsun_bedroom(caplog):
    import tensorflow_datasets as tfds

    report = data.InputReport()
    with tfds.testing.mock_data(num_examples=10), caplog.at_level(logging.WARNING):
        whole = take(data.load("lsun/bedroom", 64, 4, seed=1, report=report), 6)
        again = take(data.load("lsun/bedroom", 64, 4, seed=1), 6)
        resumed = take(data.load("lsun/bedroom", 64, 4, seed=1, skip_batches=3), 3)
    assert_images(whole, 4, size=64)
    np.testing.assert_array_equal(np.stack(whole), np.stack(again))
    np.testing.assert_array_equal(np.stack(whole[3:]), np.stack(resumed))
    # Mock images are 5 to 50 pixels: all upscaled, one warning per report (three loads here).
    assert report.upscaled >= 24 and report.unreadable == 0  # prefetching may decode more
    assert len([r for r in caplog.records if "smaller than the training size" in r.message]) == 3


@pytest.mark.parametrize("global_seed", [0, 5])
def test_tfds_order_does_not_depend_on_the_global_seed(global_seed):
    """Training sets the global seed to --seed (0 by default) before it loads the data: the TFDS
    stream must neither fail then nor change with it."""
    import keras
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=10):
        tf.random.set_seed(None)
        unseeded = take(data.load("lsun/bedroom", 16, 4, seed=1), 4)
        keras.utils.set_random_seed(global_seed)
        try:
            seeded = take(data.load("lsun/bedroom", 16, 4, seed=1), 4)
        finally:
            tf.random.set_seed(None)
    np.testing.assert_array_equal(np.stack(seeded), np.stack(unseeded))


def test_tfds_bad_records_are_skipped_and_named():
    import tensorflow_datasets as tfds

    good = encode(picture(), "PNG")

    def as_dataset(self, split, decoders=None, read_config=None, **kwargs):
        return tf.data.Dataset.from_tensor_slices({
            "id": ["a", "b", "c", "d"], "image": [good, b"broken", good, good],
            "tfds_id": [f"lsun-train.tfrecord-00000-of-00001__{i}" for i in range(4)]})

    report = data.InputReport()
    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        assert_images(take(data.load("lsun/bedroom", SIZE, 2, report=report), 4), 2)
    assert report.unreadable_examples == ["lsun-train.tfrecord-00000-of-00001__1"]


def test_tfds_not_prepared_says_what_to_download_and_where(tmp_path):
    with pytest.raises(ConfigError) as error:
        data.load("lsun/bedroom", SIZE, 4, data_dir=str(tmp_path))
    message = str(error.value)
    assert "\n" not in message
    assert "bedroom_train_lmdb.zip" in message
    assert str(tmp_path / "downloads" / "manual") in message
    assert "lsun-lmdb:PATH" in message


def test_tfds_prepares_from_the_manual_dir_and_reports_failure_in_one_line(tmp_path):
    manual = tmp_path / "downloads" / "manual"
    write(manual, {"bedroom_train_lmdb.zip": b"not it", "bedroom_val_lmdb.zip": b"nor this"})
    with pytest.raises(ConfigError, match="could not prepare .* wrong checksum") as error:
        data.load("lsun/bedroom", SIZE, 4, data_dir=str(tmp_path))
    assert "\n" not in str(error.value)


def test_tfds_unknown_config_is_a_config_error():
    with pytest.raises(ConfigError, match="BuilderConfig nosuch not found"):
        data.load("lsun/nosuch", SIZE, 4)
