"""Input pipeline speed: images per second from each source, against what training consumes.

Makes its own data: ``--images`` LSUN-like JPEGs (shorter side 256, longer side 256 to 384,
quality 75, smooth content with grain: about LSUN's bytes per image), stored three ways: a folder,
an LMDB in LSUN's layout (hex keys -> JPEG bytes) and a prepared TFDS dataset. Then it times
``wgan_tf.data.load`` on each, and on the folder with ``cache`` (decoded once, then gathered),
after a warm-up that covers tracing and tf.data's autotuning.

Training reads one real batch per critic iteration: ``n_critic * batch_size`` images per generator
iteration. The training speed (generator iterations per second) is ``--train-its-per-sec`` if
given, else measured here: the paper's 64x64 DCGAN pair in ``WGAN`` (no critic boost) fitted on a
constant batch, so that only the model's arithmetic counts. Target: every source at least 5x what
training consumes.

    .venv/bin/python benchmarks/input_pipeline.py [--images 2000] [--train-its-per-sec R]

``--folder PATH`` measures a folder of real photographs instead (decoded per batch, and with
``cache``), against the training of ``--penalty``, ``--filters`` and ``--precision`` at
``--image-size`` (e.g. the flowers at 32x32 and 64x64, as experiments/photos.py trains them).
"""
import argparse
import hashlib
import io
import os
import tempfile
import time

import lmdb
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from train_throughput import throughput  # noqa: E402  (this folder; run as a script)
from wgan_tf import data

TFDS_NAME = "wgan_tf_benchmark_bedrooms"


def lsun_like_jpegs(count, seed=0):
    """``count`` JPEG byte strings shaped like LSUN bedrooms: 256 on the shorter side, smooth
    shapes and grain so that they compress (and decode) like photographs."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        long_side = int(rng.integers(256, 385))
        width, height = (long_side, 256) if rng.random() < 0.8 else (256, long_side)
        coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
        smooth = np.asarray(coarse.resize((width, height), Image.BICUBIC), dtype=np.float32)
        grain = rng.normal(0.0, 9.0, smooth.shape)
        pixels = np.clip(smooth + grain, 0, 255).astype(np.uint8)
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, "JPEG", quality=75)
        yield out.getvalue()


def write_sources(root, jpegs):
    """The same JPEGs as a folder, an LSUN-style LMDB and a TFDS dataset under ``root``."""
    folder = os.path.join(root, "folder")
    os.makedirs(folder)
    env = lmdb.open(os.path.join(root, "lmdb"), map_size=1 << 34)
    with env.begin(write=True) as txn:
        for i, jpeg in enumerate(jpegs):
            with open(os.path.join(folder, f"{i:06d}.jpg"), "wb") as f:
                f.write(jpeg)
            txn.put(hashlib.sha1(jpeg).hexdigest().encode(), jpeg)
    env.close()
    tfds.dataset_builders.store_as_tfds_dataset(
        name=TFDS_NAME, version="1.0.0",
        features=tfds.features.FeaturesDict({"image": tfds.features.Image(encoding_format="jpeg")}),
        split_datasets={"train": tf.data.Dataset.from_tensor_slices({"image": jpegs})},
        data_dir=os.path.join(root, "tfds"))


def images_per_second(dataset, batch_size, warmup, seconds):
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    batches, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(iterator)
        batches += 1
    return batches * batch_size / (time.perf_counter() - start)


def training_its_per_second(image_size, batch_size, n_critic, iterations=3, penalty="clip",
                            filters=64, precision="float32"):
    """Generator iterations per second of the DCGAN WGAN (train_throughput.py's measurement,
    without XLA as training runs on CPU): by default the paper's setting."""
    its, _, _ = throughput(False, iterations, 1, image_size, batch_size, n_critic, penalty,
                           precision, filters=filters)
    return its


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-critic", type=int, default=5)
    parser.add_argument("--train-its-per-sec", type=float,
                        help="training speed in generator iterations per second (default: "
                        "measured here)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed span per source")
    parser.add_argument("--folder", default=None, metavar="PATH",
                        help="measure this folder of photographs instead of made-up JPEGs")
    parser.add_argument("--penalty", choices=("clip", "gp"), default="clip",
                        help="the training measured against (default: the paper's)")
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--warmup", type=int, default=20, help="batches before timing")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as root:
        if args.folder:
            sources = {"folder": (f"folder:{args.folder}", {}),
                       "folder, cache": (f"folder:{args.folder}",
                                         {"cache": os.path.join(root, "cache")})}
            print(f"{args.folder}; {os.cpu_count()} CPUs; batches {args.batch_size}x"
                  f"{args.image_size}x{args.image_size}x3")
        else:
            sources = synthetic_sources(root, args.images, args.batch_size, args.image_size)
        its = args.train_its_per_sec
        if not its:
            its = training_its_per_second(args.image_size, args.batch_size, args.n_critic,
                                          penalty=args.penalty, filters=args.filters,
                                          precision=args.precision)
            print(f"measured training speed ({args.penalty}, {args.filters} filters, "
                  f"{args.precision}): {its:.3f} generator it/s")
        need = its * args.n_critic * args.batch_size
        print(f"training consumes {need:.0f} images/s ({its:.3f} generator it/s x n_critic "
              f"{args.n_critic} x batch {args.batch_size}); target 5x = {5 * need:.0f} images/s")
        print(f"{'source':<16}{'images/s':>10}{'x training':>12}")
        for name, (spec, options) in sources.items():
            start = time.perf_counter()
            dataset = data.load(spec, args.image_size, args.batch_size, seed=0, **options)
            ready = time.perf_counter() - start
            rate = images_per_second(dataset, args.batch_size, args.warmup, args.seconds)
            print(f"{name:<16}{rate:>10.0f}{rate / need:>12.1f}   (load() took {ready:.1f} s)")


def synthetic_sources(root, count, batch_size, image_size):
    """LSUN-like JPEGs made here, stored as a folder, an LMDB and a TFDS dataset."""
    start = time.perf_counter()
    jpegs = list(lsun_like_jpegs(count))
    write_sources(root, jpegs)
    print(f"{count} JPEGs, {np.mean([len(j) for j in jpegs]) / 1024:.1f} KiB each on "
          f"average, written in {time.perf_counter() - start:.0f} s; "
          f"{os.cpu_count()} CPUs; batches {batch_size}x{image_size}x{image_size}x3")
    return {
        "folder": ("folder:" + os.path.join(root, "folder"), {}),
        "lsun-lmdb": ("lsun-lmdb:" + os.path.join(root, "lmdb"), {}),
        "tfds": (TFDS_NAME, {"data_dir": os.path.join(root, "tfds")}),
        "folder, cache": ("folder:" + os.path.join(root, "folder"),
                          {"cache": os.path.join(root, "cache")}),
    }


if __name__ == "__main__":
    main()
