"""Sample quality as the package measures it, in ``wgan-tf evaluate`` and during training
(``--eval-every``): generated and real samples, their features in a network, and distances between
the two sets of features.

Which measures a dataset gets (``Quality.keys``):

- a labelled dataset the package can train a classifier on (``digits``, ``folder:PATH`` with class
  subfolders; ``wgan_tf.metrics.classifier_for``): ``classifier_fd`` (the Fréchet distance in its
  features) and ``classifier_kid`` +- ``classifier_kid_std`` (KID, unbiased). Comparable between
  runs on the same data, not with published FIDs.
- with ``inception_weights`` (a file the user gives by path; nothing is downloaded): ``fid``,
  ``kid`` +- ``kid_std``, and with the full weights ``inception_score`` +- ``inception_score_std``
  of the generated images.
- images with neither: ``sliced_wasserstein`` (x1e3, Karras et al. 2018), from the pixels.
- 2-D toy points: ``w1``, the exact Wasserstein-1 distance.

The real samples are the first N of the dataset's stream under the seed, as training sees them;
their features are computed once and cached on disk (``reference_features``), keyed by the data's
identity (a folder's file names, sizes and modification times), the image size and channels, N,
the seed and the extractor, so evaluating a run again (or every ``--eval-every`` steps) does not
recompute them, and a change to any of these does.
"""
import hashlib
import json
import os

import numpy as np

from wgan_tf import data, metrics
from wgan_tf.models import is_conditional, latent_dim

GENERATION_BATCH = 500


def generated_samples(generator, num, seed=0, batch_size=GENERATION_BATCH, labels=None,
                      num_classes=None):
    """``num`` samples from N(0, 1) latents drawn under ``seed``, in inference mode. Images are
    clipped to [-1, 1], as every picture of them is (an MLP generator has no tanh); points are
    left alone. Calls the network directly (no ``predict``), so that it runs on this process
    alone even where the network was made under a distribution strategy.

    A conditional generator (``models.is_conditional``) makes the classes ``labels`` (int
    ``[num]``), by default every class of ``num_classes`` in turn (0, 1, ..., 0, 1, ...)."""
    latents = np.random.default_rng(seed).standard_normal(
        (num, latent_dim(generator))).astype(np.float32)
    if is_conditional(generator):
        if labels is None:
            if not num_classes:
                raise ValueError("a conditional generator needs labels or num_classes")
            labels = np.arange(num) % num_classes
        labels = np.asarray(labels, np.int32)

    def batch(i):
        z = latents[i:i + batch_size]
        return generator(z if labels is None else [z, labels[i:i + batch_size]], training=False)

    samples = np.concatenate([np.asarray(batch(i)) for i in range(0, num, batch_size)])
    return np.clip(samples, -1.0, 1.0) if samples.ndim == 4 else samples


def real_samples(spec, image_size, channels, num, seed=0, labels=False, **options):
    """``num`` real samples of ``spec`` at this image size and channels, as training sees them
    (the first ``num`` of its stream under ``seed``); with ``labels``, (samples, labels).
    ``options`` go to ``wgan_tf.data.load``."""
    batches = data.load(spec, image_size, num, channels, seed, labels=labels,
                        **{k: v for k, v in options.items() if v is not None})
    batch = next(iter(batches))
    return tuple(part.numpy() for part in batch) if labels else batch.numpy()


def class_measures(classifier, real, real_labels, fake, fake_labels, class_names):
    """How a conditional generator's samples ``fake`` of the classes ``fake_labels`` compare with
    the real images of those classes, in a classifier of the dataset's labels (``images ->
    [features, probabilities]``): ``class_accuracy`` (the share of samples the classifier
    assigns to the class asked for) and ``per_class_classifier_fd`` (per class name, the Fréchet
    distance between that class's real and generated images)."""
    real_features = classifier.predict(real, batch_size=256, verbose=0)[0]
    fake_features, probabilities = classifier.predict(fake, batch_size=256, verbose=0)
    per_class = {}
    for c, name in enumerate(class_names):
        a, b = real_features[real_labels == c], fake_features[fake_labels == c]
        per_class[name] = metrics.frechet_distance(a, b) if min(len(a), len(b)) > 1 else None
    return {"class_accuracy": float((probabilities.argmax(axis=1) == fake_labels).mean()),
            "per_class_classifier_fd": per_class}


def reference_features(spec, image_size, channels, num, seed, extractor, extract, cache_dir=None,
                       data_dir=None):
    """``extract(real samples)`` (an array, or a tuple of arrays) for the first ``num`` real
    samples of ``spec``, cached in ``cache_dir`` (default ``metrics.default_cache_dir()``) under
    a key of the data's identity, the image shape, ``num``, ``seed`` and ``extractor`` (its name).
    """
    key = json.dumps([data.identity(spec, data_dir), image_size, channels, num, seed, extractor])
    directory = os.path.join(cache_dir or metrics.default_cache_dir(), "reference")
    path = os.path.join(directory, f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.npz")
    if os.path.exists(path):
        with np.load(path) as stored:
            return tuple(stored[f"a{i}"] for i in range(len(stored.files)))
    real = real_samples(spec, image_size, channels, num, seed, data_dir=data_dir)
    outputs = extract(real)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    os.makedirs(directory, exist_ok=True)
    partial = f"{path}.{os.getpid()}.npz"  # another process may be writing it too
    np.savez(partial, **{f"a{i}": np.asarray(a) for i, a in enumerate(outputs)})
    os.replace(partial, path)
    return outputs


class Quality:
    """The measures of generated samples against ``spec`` (``keys()``), with their reference
    features prepared once. ``measure(generator)`` samples ``num`` latents under ``seed``;
    ``measure_samples(samples)`` takes samples already made."""

    def __init__(self, spec, image_size, channels, num=2000, seed=0, cache_dir=None,
                 data_dir=None, inception_weights=None):
        self.spec, self.image_size, self.channels = spec, image_size, channels
        self.num, self.seed = num, seed
        self.cache_dir, self.data_dir = cache_dir, data_dir
        self.inception_weights = inception_weights
        if inception_weights:
            metrics.check_inception_weights(inception_weights)
        self.points = data.point_dim(spec) is not None
        self.classifier = None if self.points else metrics.classifier_for(
            spec, image_size, channels, cache_dir)

    def keys(self):
        """The names of the measures, as ``measure`` returns them."""
        if self.points:
            return ["w1"]
        keys = []
        if self.classifier:
            keys += ["classifier_fd", "classifier_kid", "classifier_kid_std"]
        if self.inception_weights:
            keys += ["fid", "kid", "kid_std"]
            if metrics.inception_gives_scores(self.inception_weights):
                keys += ["inception_score", "inception_score_std"]
        return keys or ["sliced_wasserstein"]

    def describe(self):
        """JSON-able: what the features are (the classifier's name, Inception's file)."""
        described = {}
        if self.classifier:
            described["classifier"] = self.classifier[0]
        if self.inception_weights:
            described["inception_weights"] = os.path.basename(self.inception_weights)
        return described

    def real(self):
        return real_samples(self.spec, self.image_size, self.channels, self.num, self.seed,
                            data_dir=self.data_dir)

    def measure(self, generator, num_classes=None):
        """The measures of ``generator``'s samples (a conditional one's: every class in turn,
        ``num_classes`` of them)."""
        return self.measure_samples(generated_samples(generator, self.num, self.seed,
                                                      num_classes=num_classes))

    def measure_samples(self, fake):
        if self.points:
            return {"w1": metrics.w1_exact(self.real(), fake)}
        results = {}
        if self.classifier:
            name, classifier = self.classifier
            real, = self._reference(name, lambda images: _features(classifier, images))
            results.update(_distances("classifier_", real, _features(classifier, fake),
                                      self.seed))
        if self.inception_weights:
            real, _ = self._reference(f"inception:{os.path.basename(self.inception_weights)}",
                                      self._inception)
            features, probabilities = self._inception(fake)
            results.update(_distances("", real, features, self.seed, fd_name="fid"))
            if probabilities.shape[-1]:
                score, std = metrics.inception_score(probabilities)
                results.update(inception_score=score, inception_score_std=std)
        if not results:
            results["sliced_wasserstein"] = metrics.sliced_wasserstein(
                self.real(), fake, seed=self.seed)["sliced_wasserstein"]
        return results

    def _reference(self, extractor, extract):
        return reference_features(self.spec, self.image_size, self.channels, self.num, self.seed,
                                  extractor, extract, self.cache_dir, self.data_dir)

    def _inception(self, images):
        features, probabilities = metrics.inception_outputs(images, self.inception_weights)
        return (features, np.zeros((len(features), 0), np.float32) if probabilities is None
                else probabilities)


def _features(classifier, images):
    return classifier.predict(images, batch_size=256, verbose=0)[0]


def _distances(prefix, real, fake, seed, fd_name=None):
    kid, kid_std = metrics.kernel_inception_distance(real, fake, seed=seed)
    return {fd_name or f"{prefix}fd": metrics.frechet_distance(real, fake),
            f"{prefix}kid": kid, f"{prefix}kid_std": kid_std}
