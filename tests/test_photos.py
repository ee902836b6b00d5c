"""Colour photographs and the quality tools users ask for on them: labelled folders, generator EMA,
DiffAugment, KID, cached reference features and ``--eval-every``. The training paths run as users
run them, ``wgan-tf train`` in fresh processes, on ../shared/data/flowers when it is there (a small
labelled folder made here otherwise) at 16x16."""
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import (TINY_FLAGS, labelled_photo_folder, metrics_rows, photos, saved_weights,
                     user_env, wgan_tf)
from wgan_tf import augment, ema, metrics, quality
from wgan_tf.data import folder_source

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def photo_spec(tmp_path_factory):
    return photos(tmp_path_factory)


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory):
    """XDG_CACHE_HOME of the commands here: the photos' classifier is trained once per module."""
    return str(tmp_path_factory.mktemp("cache-home"))




# -- photos as a dataset ---------------------------------------------------------------------------

def test_labels_are_the_class_folders(tmp_path):
    root = labelled_photo_folder(tmp_path / "photos", classes=("b", "a"), per_class=3)
    images, labels, names = folder_source.labelled_images(str(root), 16, 3)
    assert names == ["a", "b"] and images.shape == (6, 16, 16, 3) and images.dtype == np.uint8
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    (root / "loose.jpg").write_bytes((root / "a" / "000.jpg").read_bytes())
    with pytest.raises(Exception, match="has no class labels"):
        folder_source.labelled_images(str(root), 16, 3)


def test_labelled_batches_are_the_same_with_and_without_the_disk_cache(tmp_path):
    from wgan_tf import data

    spec = f"folder:{labelled_photo_folder(tmp_path / 'photos', per_class=5)}"
    plain = next(iter(data.load(spec, 16, 8, 3, 0, labels=True)))
    cached = next(iter(data.load(spec, 16, 8, 3, 0, labels=True, cache=str(tmp_path / "c"))))
    assert cached[1].shape == (8,) and cached[1].dtype == tf.int32
    np.testing.assert_array_equal(plain[1], cached[1])
    np.testing.assert_array_equal(plain[0], cached[0])
    np.testing.assert_array_equal(plain[0], next(iter(data.load(spec, 16, 8, 3, 0))))


# -- generator EMA ---------------------------------------------------------------------------------

def test_ema_is_the_ramped_up_average_of_the_trained_weights():
    """After each generator iteration t, a <- d_t a + (1 - d_t) w for every trained weight, with
    d_t = min(decay, 0.5 ** (1 / (0.02 t))); batch-norm statistics are not averaged."""
    from wgan_tf import models
    from wgan_tf.wgan import WGAN

    keras.utils.set_random_seed(0)
    generator, critic = models.build_pair("dcgan", 16, 1, 8, 4)
    model = WGAN(generator, critic, n_critic=1, penalty="gp", ema_decay=0.9, seed=0)
    model.compile(jit_compile=False)
    assert model.sampler is model.generator_ema
    initial = [w.numpy() for w in model.generator_ema.weights]
    expected = [w.numpy() for w in generator.weights]
    images = tf.data.Dataset.from_tensors(tf.random.uniform([8, 16, 16, 1], -1, 1)).repeat()
    for t in range(1, 61):
        model.fit(images, steps_per_epoch=1, epochs=1, verbose=0)
        d = min(0.9, 0.5 ** (1 / (0.02 * t)))
        assert float(ema.decay_at(0.9, t)) == pytest.approx(d, rel=1e-5)
        expected = [d * a + (1 - d) * w.numpy() for a, w in zip(expected, generator.weights)]
    assert 0.5 ** (1 / (0.02 * 60)) < 0.9  # the ramp-up still holds the decay at t = 60
    for a, w, e, start in zip(model.generator_ema.weights, generator.weights, expected, initial,
                              strict=True):
        if w.trainable:
            np.testing.assert_allclose(a.numpy(), e, rtol=1e-4, atol=1e-6)
        else:  # batch-norm statistics: untouched until the standing statistics are computed
            np.testing.assert_array_equal(a.numpy(), start)
    assert not np.allclose(model.generator_ema.weights[0].numpy(), generator.weights[0].numpy())


def test_the_ema_samples_with_its_own_standing_statistics():
    """BigGAN's standing statistics: each batch norm's moving mean and variance become the mean
    of its batch statistics over fixed latents, the network run in training mode; a pure
    function of the weights (recomputed from scratch, whatever was there)."""
    from wgan_tf import models, rng

    keras.utils.set_random_seed(0)
    generator = models.dcgan_generator(16, 1, 8, 4)
    first = generator.get_layer("bn0")
    for w in generator.weights:
        if not w.trainable:
            w.assign(tf.random.uniform(w.shape, 1, 2))  # stale statistics
    ema.standing_statistics(generator, seed=3)
    latents = rng.normal([ema.STANDING_SAMPLES, 8], 3, 3, 0, lane=1)
    project = keras.Model(generator.inputs, generator.get_layer("project").output)(latents)
    batches = tf.reshape(project, [-1, ema.STANDING_BATCH, *project.shape[1:]])
    means, variances = tf.nn.moments(batches, axes=[1, 2, 3])
    np.testing.assert_allclose(first.moving_mean.numpy(), tf.reduce_mean(means, 0), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(first.moving_variance.numpy(), tf.reduce_mean(variances, 0),
                               rtol=1e-4, atol=1e-6)
    statistics = [w.numpy() for w in generator.weights if not w.trainable]
    ema.standing_statistics(generator, seed=3)
    for a, b in zip(statistics, [w.numpy() for w in generator.weights if not w.trainable]):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert all(norm.momentum == 0.9 and norm.trainable for norm in models.batch_norms(generator))
    # In inference mode the network now normalises as it does on a large batch in training mode.
    z = rng.normal([ema.STANDING_SAMPLES, 8], 3, 3, 0, lane=1)
    inference = generator(z, training=False).numpy()
    assert np.abs(inference - generator(z, training=True).numpy()).mean() < 0.02


# -- DiffAugment -----------------------------------------------------------------------------------

def test_augmentations_transform_as_the_paper_says():
    images = tf.random.uniform([6, 16, 16, 3], -1, 1)
    numbers = augment.draw(6, 0, 0, 7, 1)
    assert np.array_equal(numbers, augment.draw(6, 0, 0, 7, 1))  # a pure function of the counters
    assert not np.array_equal(numbers, augment.draw(6, 0, 0, 7, 2))  # lanes are independent
    assert augment.augment(images, numbers, ()) is images
    cut = augment.augment(images, numbers, ("cutout",)).numpy()
    zeros = (cut == 0).all(axis=3).reshape(6, -1).sum(axis=1)
    assert ((zeros > 0) & (zeros <= 64)).all()  # a square of half the size, maybe clipped
    # An integer shift of up to 1/8 of the size (2 pixels) with zeros coming in.
    shifted = augment.augment(images, numbers, ("translation",)).numpy()
    for image, moved in zip(images.numpy(), shifted):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(np.roll(image, (dy, dx), axis=(0, 1))[2:-2, 2:-2],
                                   moved[2:-2, 2:-2])]
        assert found, "each image is its own shift"
    with tf.GradientTape() as tape:
        tape.watch(images)
        total = tf.reduce_sum(augment.augment(images, numbers, ("color", "translation", "cutout")))
    gradient = tape.gradient(total, images)
    assert np.isfinite(gradient.numpy()).all() and np.abs(gradient.numpy()).sum() > 0


def test_augment_policy_errors_are_one_line(tmp_path):
    result = wgan_tf("train", *TINY_FLAGS, "--augment", "colour", "--out", tmp_path / "run",
                     check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "wgan-tf train: error: --augment takes a comma-separated list of color, translation, "
        "cutout (each once), got 'colour'")
    result = wgan_tf("train", *TINY_FLAGS, "--model", "wae", "--ema", "0.999",
                     "--out", tmp_path / "run", check=False)
    assert result.returncode == 2
    assert "--ema, --augment, --lookahead and --conditional are for GANs" in result.stderr


# -- EMA and augmentation, as users run them: one and two devices, stop and resume -----------------

PHOTO_FLAGS = ["--image-size", 16, "--channels", 3, "--latent-dim", 8, "--filters", 8,
               "--batch-size", 8, "--n-critic", 2, "--penalty", "gp", "--jit-compile", "off",
               "--seed", 3, "--ema", 0.9, "--augment", "color,translation,cutout",
               "--log-every", 1, "--checkpoint-every", 100, "--quiet"]


@pytest.fixture(scope="module")
def photo_runs(tmp_path_factory, photo_spec, cache_home):
    """Three runs of 4 iterations with EMA, DiffAugment and --eval-every 2: on one device, on
    two, and on one stopped at 2 and resumed."""
    root = tmp_path_factory.mktemp("photo-runs")
    env = user_env(XDG_CACHE_HOME=cache_home)
    flags = ["--dataset", photo_spec, *PHOTO_FLAGS, "--eval-every", 2, "--eval-num", 64]
    runs = {name: str(root / name) for name in ("one", "two", "resumed")}
    wgan_tf("train", *flags, "--steps", 4, "--out", runs["one"], env=env)
    wgan_tf("train", *flags, "--steps", 4, "--devices", 2, "--out", runs["two"], env=env)
    wgan_tf("train", *flags, "--steps", 2, "--out", runs["resumed"], env=env)
    rerun = wgan_tf("train", *flags, "--steps", 4, "--out", runs["resumed"], env=env)
    assert "resuming at generator iteration 2 of 4" in rerun.stdout
    return runs


def test_ema_and_augmentation_resume_exactly(photo_runs):
    for name in ("generator", "generator_ema", "critic"):
        for a, b in zip(saved_weights(photo_runs["one"], name), saved_weights(photo_runs["resumed"], name),
                        strict=True):
            np.testing.assert_array_equal(a, b)
    assert [r["wasserstein"] for r in metrics_rows(photo_runs["one"])] == \
        [r["wasserstein"] for r in metrics_rows(photo_runs["resumed"])]


def test_ema_and_augmentation_are_the_same_on_two_devices(photo_runs):
    """The prior samples and the augmentations are drawn for the global batch, and the EMA is
    updated from the all-reduced weights: two replicas compute one device's run, up to the
    round-off of a different reduction order."""
    for name in ("generator", "generator_ema", "critic"):
        for a, b in zip(saved_weights(photo_runs["one"], name), saved_weights(photo_runs["two"], name),
                        strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    for a, b in zip(metrics_rows(photo_runs["one"]), metrics_rows(photo_runs["two"]), strict=True):
        np.testing.assert_allclose(float(a["wasserstein"]), float(b["wasserstein"]), rtol=1e-3,
                                   atol=1e-5)


def test_eval_every_writes_the_ema_and_raw_measures(photo_runs):
    logged = metrics_rows(photo_runs["one"])
    assert [int(r["generator_iteration"]) for r in logged] == [1, 2, 3, 4]
    for key in ("classifier_fd", "classifier_kid", "classifier_kid_std", "raw_classifier_fd"):
        values = [float(r[key]) for r in logged]
        assert math.isnan(values[0]) and math.isnan(values[2]), key
        assert values[1] > 0 and values[3] > 0, key
    # The EMA (decay 0.9, warmed up) and the raw generator are different networks.
    assert logged[3]["classifier_fd"] != logged[3]["raw_classifier_fd"]


def test_export_and_evaluate_take_the_ema_or_the_raw_generator(photo_runs, tmp_path, cache_home):
    env = user_env(XDG_CACHE_HOME=cache_home)
    run = photo_runs["one"]
    for choice, network in ((None, "generator_ema"), ("raw", "generator")):
        extra = ["--generator", choice] if choice else []
        out = tmp_path / f"{network}.json"
        wgan_tf("evaluate", run, "--num", 64, "--out", out, *extra, env=env)
        assert f'"generator": "{network}"' in out.read_text()
    exported = wgan_tf("export", run, "--out", tmp_path / "models", env=env).stdout.strip()
    served = tf.saved_model.load(exported).signatures["serving_default"]
    latent = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    ema_images = keras.saving.load_model(os.path.join(run, "generator_ema.keras"))(latent)
    expected = np.round((np.clip(ema_images.numpy(), -1, 1) + 1) * 127.5)
    got = served(latent=tf.constant(latent))["images"].numpy().astype(float)
    assert np.abs(got - expected).max() <= 1


# -- KID, and the real images' features computed once ----------------------------------------------

def test_kid_is_the_unbiased_polynomial_mmd():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (30, 4)), rng.normal(0.5, 1, (25, 4))

    def k(x, y):
        return (np.dot(x, y) / 4 + 1) ** 3

    m = 25  # one subset of all of b and 25 of a: compare on exactly those rows
    mean, std = metrics.kernel_inception_distance(a, b, subsets=1, subset_size=m, seed=7)
    picked = np.random.default_rng(7)
    x, y = a[picked.choice(30, m, replace=False)], b[picked.choice(25, m, replace=False)]
    direct = (sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
              / (m * (m - 1)) - 2 * sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2)
    assert mean == pytest.approx(direct, rel=1e-10) and std == 0
    same, _ = metrics.kernel_inception_distance(a, a, subsets=5, subset_size=10)
    assert abs(same) < 0.5 * mean  # unbiased: near 0 for one distribution, not > 0 by N


def test_reference_features_are_cached_and_follow_the_data(tmp_path, monkeypatch):
    root = labelled_photo_folder(tmp_path / "photos", per_class=6)
    computed = []
    real = quality.real_samples

    def counting(*args, **kwargs):
        computed.append(args[:3])
        return real(*args, **kwargs)

    monkeypatch.setattr(quality, "real_samples", counting)

    def features(size=16):
        return quality.reference_features(f"folder:{root}", size, 3, 8, 0, "mean-colour",
                                          lambda images: images.mean(axis=(1, 2)),
                                          cache_dir=str(tmp_path / "cache"))[0]

    first = features()
    np.testing.assert_array_equal(features(), first)
    assert len(computed) == 1  # the second time from the cache
    features(size=32)
    assert len(computed) == 2  # another size is other features
    picture = root / "daisy" / "000.jpg"
    picture.write_bytes((root / "tulip" / "000.jpg").read_bytes())
    changed = features()
    assert len(computed) == 3  # a changed file is other data
    assert not np.array_equal(changed, first)


def test_the_folder_classifier_is_found_again_for_a_copy_of_the_photos(tmp_path):
    """Keyed by names and sizes: a copy (another path, new modification times: a CI checkout, a
    re-created mount) finds the cached classifier, so its FDs stay comparable; a changed file
    does not."""
    import shutil

    root = labelled_photo_folder(tmp_path / "photos", per_class=3)
    copy = tmp_path / "elsewhere" / "photos"
    shutil.copytree(root, copy)  # new modification times
    os.utime(copy / "daisy" / "000.jpg", (1, 1))
    assert metrics._folder_key(str(copy)) == metrics._folder_key(str(root))
    picture = copy / "daisy" / "000.jpg"
    picture.write_bytes(picture.read_bytes() + b"\0")
    assert metrics._folder_key(str(copy)) != metrics._folder_key(str(root))
