"""``wgan-tf evaluate``: a run's generator against its dataset, with ``wgan_tf.quality`` and
``wgan_tf.metrics``, as JSON.

N generated samples (latents from ``--seed``) and N real ones (the dataset stream under the same
seed) are compared with whatever measures the data allows:

- ``toy:*``: ``w1`` (exact); the Gaussian mixtures add ``modes_covered``, ``num_modes`` and
  ``high_quality``.
- images: ``sliced_wasserstein`` (x1e3, mean over pyramid levels) and
  ``sliced_wasserstein_levels``; a dataset with a classifier of its own labels (``digits`` and its
  splits, ``folder:PATH`` with class subfolders) adds ``classifier_fd``, ``classifier_kid``,
  ``classifier_kid_std`` and ``classifier`` (its name: the features are the dataset's own, not
  comparable with published FIDs); a folder's adds ``classifier_accuracy`` (held out); digits add
  ``mode_coverage``, ``class_histogram`` and ``confident``. ``--inception-weights`` adds ``fid``,
  ``kid``, ``kid_std`` and, with the full weights file, ``inception_score`` and its std. A
  conditional run (``--conditional``; its samples ask for every class in turn) with such a
  classifier adds ``class_accuracy`` (the share of samples the classifier assigns to the class
  asked for) and ``per_class_classifier_fd`` (per class: real against generated images of it).

The real images' features are cached (``wgan_tf.quality.reference_features``): a second
evaluation against the same data does not recompute them.

Always: ``num_samples``, ``dataset``, ``seed``, ``generator`` (the network measured:
``generator_ema`` where the run keeps an EMA, unless ``--generator raw``) and
``generator_iteration`` (that of the run's last checkpoint, which is when the ``.keras`` files were
written; null without checkpoints).

An auto-encoder run (``--model wae`` or ``vae``) is measured on its decoder's samples the same way
(``iteration`` replaces ``generator_iteration``) and adds ``sharpness`` (the mean of
``metrics.sharpness`` over the samples), ``sharpness_real`` (over the real images) and
``reconstruction``: the mean squared pixel error on [-1, 1] of the encoder-decoder's
reconstructions of N images of ``reconstruction_dataset`` (default: the run's held-out images,
``digits:test`` for ``digits:train``; where none is known, the run's own dataset).

N defaults to 2000: exact W1 is O(N^3) and takes seconds there, and SWD's 128 patches per image
stay within memory. FID is biased upwards for small N; compare with papers at ``--num 10000`` or
more. KID is unbiased.
"""
import json
import os

import numpy as np
import tensorflow as tf

from wgan_tf import autoencoder_models, data, metrics, quality
from wgan_tf.config import sampler_network
from wgan_tf.errors import ConfigError
from wgan_tf.quality import generated_samples  # noqa: F401 (explain's too)
from wgan_tf.rundir import load_saved, read_run_config

DEFAULT_NUM = 2000


def run(args):
    results = evaluate(args.run_dir, args.dataset, args.num, args.seed, args.inception_weights,
                       args.cache_dir, args.data_dir, args.reconstruction_dataset,
                       args.generator)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results))


def evaluate(run_dir, dataset=None, num=DEFAULT_NUM, seed=0, inception_weights=None,
             cache_dir=None, data_dir=None, reconstruction_dataset=None, generator=None):
    """The measures for ``run_dir``'s generator as a JSON-ready dict (keys in the module doc)."""
    config = read_run_config(run_dir)
    sampler = sampler_network(config, generator)
    spec = dataset or config["dataset"]
    if num < 2:
        raise ConfigError(f"--num must be at least 2, got {num}")
    points = data.point_dim(spec) is not None
    if inception_weights and points:
        raise ConfigError("FID is for images; toy datasets are measured by w1")
    network = load_saved(run_dir, sampler)
    if (len(network.output_shape) == 2) != points:
        raise ConfigError(f"{run_dir}'s generator makes {network.output_shape[1:]} samples, "
                          f"which cannot be compared with {spec}")
    measures = quality.Quality(spec, config.get("image_size", 64), config.get("channels", 3),
                               num, seed, cache_dir, data_dir, inception_weights)
    fake = generated_samples(network, num, seed, num_classes=num_classes(config))
    real = measures.real()
    step = "iteration" if sampler == "decoder" else "generator_iteration"
    results = {"dataset": spec, "num_samples": num, "seed": seed, "generator": sampler,
               step: generator_iteration(run_dir)}
    if points:
        results.update(measures.measure_samples(fake))
        name = spec[len("toy:"):]
        if name in ("8gaussians", "25gaussians"):
            results.update(metrics.mode_stats(fake, *metrics.toy_modes(name)))
        return results
    results.update(metrics.sliced_wasserstein(real, fake, seed=seed))
    results.update(measures.measure_samples(fake))
    results.update(measures.describe())
    if spec.startswith("folder:") and measures.classifier:
        results["classifier_accuracy"] = metrics.folder_classifier_info(
            os.path.expanduser(spec[len("folder:"):]), config["image_size"], config["channels"],
            cache_dir)["accuracy"]
    if spec == "digits" or spec.startswith("digits:"):
        results.update(metrics.mode_coverage(fake, measures.classifier[1]))
    if num_classes(config) and measures.classifier:
        real_images, real_labels = quality.real_samples(
            spec, config["image_size"], config["channels"], num, seed, labels=True,
            data_dir=data_dir)
        results.update(quality.class_measures(
            measures.classifier[1], real_images, real_labels, fake,
            np.arange(num) % num_classes(config), config["class_names"]))
    if sampler == "decoder":
        results["sharpness"] = float(metrics.sharpness(fake).mean())
        results["sharpness_real"] = float(metrics.sharpness(real).mean())
        held_out = reconstruction_dataset or data.held_out(config["dataset"]) or config["dataset"]
        images = real_samples(held_out, config, num, seed, data_dir=data_dir)
        results["reconstruction_dataset"] = held_out
        results["reconstruction"] = metrics.reconstruction_error(
            images, reconstructions(load_saved(run_dir, "encoder"), network, images))
    return results


def reconstructions(encoder, decoder, images, batch_size=500):
    """The auto-encoder's reconstructions of ``images`` in inference mode (a VAE's through its
    posterior mean), clipped to [-1, 1]."""
    codes = autoencoder_models.code(encoder.predict(images, batch_size=batch_size, verbose=0))
    return np.clip(decoder.predict(codes, batch_size=batch_size, verbose=0), -1.0, 1.0)


def num_classes(config):
    """A conditional run's number of classes (its config.json's ``class_names``), else None."""
    return len(config["class_names"]) if config.get("conditional") else None


def generator_iteration(run_dir):
    """The generator iteration of the run's latest checkpoint, or None."""
    latest = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    return int(latest.rsplit("-", 1)[1]) if latest else None


def real_samples(spec, config, num, seed=0, **options):
    """``num`` real samples of ``spec`` at the run's image size and channels (``config``: its
    config.json), as training sees them. ``options`` go to ``wgan_tf.data.load``."""
    return quality.real_samples(spec, config.get("image_size", 64), config.get("channels", 3),
                                num, seed, **options)
