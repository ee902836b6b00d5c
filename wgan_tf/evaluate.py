"""``wgan-tf evaluate``: a run's generator against its dataset, with ``wgan_tf.metrics``, as JSON.

N generated samples (latents from ``--seed``) and N real ones (the dataset stream under the same
seed) are compared with whatever measures the data allows:

- ``toy:*``: ``w1`` (exact); the Gaussian mixtures add ``modes_covered``, ``num_modes`` and
  ``high_quality``.
- images: ``sliced_wasserstein`` (x1e3, mean over pyramid levels) and
  ``sliced_wasserstein_levels``; ``digits`` adds ``classifier_fd``, ``mode_coverage``,
  ``class_histogram`` and ``confident``; ``--inception-weights`` adds ``fid``.

Always: ``num_samples``, ``dataset``, ``seed`` and ``generator_iteration`` (that of the run's last
checkpoint, which is when ``generator.keras`` was written; null without checkpoints).

N defaults to 2000: exact W1 is O(N^3) and takes seconds there, and SWD's 128 patches per image
stay within memory. FID is biased upwards for small N; compare with papers at ``--num 10000`` or
more.
"""
import json
import os

import numpy as np
import tensorflow as tf

from wgan_tf import data, metrics
from wgan_tf.errors import ConfigError
from wgan_tf.rundir import load_saved, read_run_config

DEFAULT_NUM = 2000


def run(args):
    results = evaluate(args.run_dir, args.dataset, args.num, args.seed, args.inception_weights,
                       args.cache_dir, args.data_dir)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results))


def evaluate(run_dir, dataset=None, num=DEFAULT_NUM, seed=0, inception_weights=None,
             cache_dir=None, data_dir=None):
    """The measures for ``run_dir``'s generator as a JSON-ready dict (keys in the module doc)."""
    config = read_run_config(run_dir)
    spec = dataset or config["dataset"]
    if num < 2:
        raise ConfigError(f"--num must be at least 2, got {num}")
    if inception_weights:
        metrics.check_inception_weights(inception_weights)
    generator = load_saved(run_dir, "generator")
    if (len(generator.output_shape) == 2) != (data.point_dim(spec) is not None):
        raise ConfigError(f"{run_dir}'s generator makes {generator.output_shape[1:]} samples, "
                          f"which cannot be compared with {spec}")
    fake = generated_samples(generator, num, seed)
    real = real_samples(spec, config, num, seed, data_dir=data_dir)
    results = {"dataset": spec, "num_samples": num, "seed": seed,
               "generator_iteration": generator_iteration(run_dir)}
    if data.point_dim(spec) is not None:
        if inception_weights:
            raise ConfigError("FID is for images; toy datasets are measured by w1")
        results["w1"] = metrics.w1_exact(real, fake)
        name = spec[len("toy:"):]
        if name in ("8gaussians", "25gaussians"):
            results.update(metrics.mode_stats(fake, *metrics.toy_modes(name)))
        return results
    results.update(metrics.sliced_wasserstein(real, fake, seed=seed))
    if spec == "digits":
        classifier = metrics.digits_classifier(config["image_size"], config["channels"], cache_dir)
        results["classifier_fd"] = metrics.classifier_fd(real, fake, classifier)
        results.update(metrics.mode_coverage(fake, classifier))
    if inception_weights:
        results["fid"] = metrics.fid(real, fake, inception_weights)
    return results


def generator_iteration(run_dir):
    """The generator iteration of the run's latest checkpoint, or None."""
    latest = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    return int(latest.rsplit("-", 1)[1]) if latest else None


def generated_samples(generator, num, seed=0, batch_size=500):
    """``num`` samples from N(0, 1) latents drawn under ``seed``. Images are clipped to [-1, 1],
    as every picture of them is (an MLP generator has no tanh); points are left alone."""
    latents = np.random.default_rng(seed).standard_normal(
        (num, generator.input_shape[-1])).astype(np.float32)
    samples = generator.predict(latents, batch_size=batch_size, verbose=0)
    return np.clip(samples, -1.0, 1.0) if samples.ndim == 4 else samples


def real_samples(spec, config, num, seed=0, **options):
    """``num`` real samples of ``spec`` at the run's image size and channels, as training sees
    them. ``options`` go to ``wgan_tf.data.load`` (e.g. ``data_dir``)."""
    batches = data.load(spec, config.get("image_size", 64), num, config.get("channels", 3), seed,
                        **{k: v for k, v in options.items() if v is not None})
    return next(iter(batches)).numpy()
