"""Metrics against direct computations on known cases, and ``wgan-tf evaluate`` on tiny runs."""
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import linalg

from wgan_tf import cli, metrics, models
from wgan_tf.data import builtin
from wgan_tf.errors import ConfigError


def toy_points(name, num, seed=0):
    return builtin.toy_batch(name, num, tf.constant([seed, 0], tf.int64)).numpy()


@pytest.fixture(scope="module")
def digits16():
    images, labels = builtin.digits_array(16, 1)
    return builtin.scale_to_unit(images).numpy(), labels


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def classifier(cache_dir):
    return metrics.digits_classifier(16, 1, cache_dir)


def test_frechet_distance_is_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 6))
    b = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 0.5
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    direct = (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a + cov_b)
              - 2 * np.trace(linalg.sqrtm(cov_a @ cov_b).real))
    assert metrics.frechet_distance(a, b) == pytest.approx(direct, rel=1e-9)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    shift = np.array([0.3, 0, 0, 0.4, 0, 0])
    assert metrics.frechet_distance(a, a + shift) == pytest.approx(0.25, rel=1e-9)


def test_w1_exact_on_known_cases():
    a = toy_points("25gaussians", 300)
    assert metrics.w1_exact(a, a[::-1]) == pytest.approx(0.0, abs=1e-12)
    # A translation moves every point by its length, and no plan does better (Jensen).
    assert metrics.w1_exact(a, a + [0.3, 0.4]) == pytest.approx(0.5, rel=1e-9)
    far = metrics.w1_exact(a, toy_points("8gaussians", 300))
    assert metrics.w1_exact(a, toy_points("25gaussians", 300, seed=1)) < far / 3
    with pytest.raises(ValueError):
        metrics.w1_exact(a, a[:10])


@pytest.mark.parametrize("name, modes", [("8gaussians", 8), ("25gaussians", 25)])
def test_mode_stats_of_real_data_and_a_dropped_mode(name, modes):
    centers, std = metrics.toy_modes(name)
    points = toy_points(name, 2000)
    real = metrics.mode_stats(points, centers, std)
    assert real["modes_covered"] == real["num_modes"] == modes
    assert real["high_quality"] == pytest.approx(0.989, abs=0.01)  # 2-D mass within 3 sigma

    nearest = np.argmin(np.linalg.norm(points[:, None] - centers, axis=-1), axis=1)
    kept = points[nearest != 0]
    dropped = np.concatenate([kept, kept])[:len(points)]
    assert metrics.mode_stats(dropped, centers, std)["modes_covered"] == modes - 1
    collapsed = metrics.mode_stats(np.repeat(centers[:1], 2000, axis=0), centers, std)
    assert collapsed == {"modes_covered": 1, "num_modes": modes, "high_quality": 1.0}
    spread = metrics.mode_stats(points * 1.5, centers, std)
    assert spread["high_quality"] < 0.2


def test_toy_modes_rejects_other_toys():
    with pytest.raises(ConfigError, match="not a Gaussian mixture"):
        metrics.toy_modes("swissroll")


def test_sliced_wasserstein(digits16):
    images = digits16[0]
    a, b = images[:600:2], images[1:600:2]
    same = metrics.sliced_wasserstein(a, a)
    assert same["sliced_wasserstein"] == 0.0
    assert list(same["sliced_wasserstein_levels"]) == ["16"]
    close = metrics.sliced_wasserstein(a, b)["sliced_wasserstein"]
    blurred = metrics.sliced_wasserstein(
        a, tf.image.resize(tf.image.resize(b, (8, 8)), (16, 16)).numpy())["sliced_wasserstein"]
    noise = np.random.default_rng(0).uniform(-1, 1, a.shape).astype(np.float32)
    far = metrics.sliced_wasserstein(a, noise)["sliced_wasserstein"]
    assert 0 < close < blurred < far

    rgb = np.repeat(np.stack([np.kron(x, np.ones((2, 2, 1))) for x in a[:40]]), 3, axis=-1)
    levels = metrics.sliced_wasserstein(rgb, rgb[::-1])["sliced_wasserstein_levels"]
    assert list(levels) == ["32", "16"]


def test_laplacian_pyramid_reconstructs(digits16):
    images = np.transpose(digits16[0][:5], (0, 3, 1, 2))
    bands = metrics.laplacian_pyramid(images, 2)
    assert [b.shape[-1] for b in bands] == [16, 8]
    np.testing.assert_allclose(bands[0] + metrics._pyramid_up(bands[1]), images, atol=1e-5)


def test_digits_classifier_is_accurate_cached_and_deterministic(classifier, cache_dir, digits16):
    images, labels = digits16
    probabilities = classifier.predict(images[::5], verbose=0)[1]
    assert np.mean(probabilities.argmax(1) == labels[::5]) > 0.95  # held-out digits
    assert metrics.digits_classifier(16, 1, cache_dir) is classifier
    assert os.path.isfile(os.path.join(cache_dir, "digits-classifier-v1-16x16x1.keras"))
    again = metrics.train_digits_classifier(16, 1)
    for w1, w2 in zip(classifier.weights, again.weights):
        np.testing.assert_array_equal(w1.numpy(), w2.numpy())


def test_classifier_fd_and_mode_coverage(classifier, digits16):
    images, labels = digits16
    a, b = images[:800], images[800:1600]
    assert metrics.classifier_fd(a, a, classifier) == pytest.approx(0.0, abs=1e-6)
    close = metrics.classifier_fd(a, b, classifier)
    noise = np.random.default_rng(0).uniform(-1, 1, a.shape).astype(np.float32)
    assert close * 10 < metrics.classifier_fd(a, noise, classifier)

    full = metrics.mode_coverage(b, classifier)
    assert full["mode_coverage"] == 1.0 and full["confident"] > 0.8
    no_three = b[labels[800:1600] != 3]
    dropped = metrics.mode_coverage(no_three, classifier)
    assert dropped["mode_coverage"] == 0.9
    assert dropped["class_histogram"][3] < 0.2 * len(no_three) / 10


def test_fid_needs_a_weights_file(tmp_path):
    images = np.zeros((2, 16, 16, 1), np.float32)
    with pytest.raises(ConfigError, match="by path"):
        metrics.fid(images, images, None)
    with pytest.raises(ConfigError, match="no InceptionV3 weights file"):
        metrics.fid(images, images, str(tmp_path / "missing.h5"))


def test_fid_with_a_weights_file(tmp_path, digits16):
    # Random weights stand in for ImageNet's: the path through Keras's loader is the same.
    path = str(tmp_path / "inception_notop.weights.h5")
    inception = keras.applications.InceptionV3(weights=None, include_top=False, pooling="avg")
    inception.save_weights(path)
    a, b = digits16[0][:6], digits16[0][6:12]
    different = metrics.fid(a, b, path)
    assert different > 0
    assert metrics.fid(a, a[::-1], path) == pytest.approx(0.0, abs=1e-6 * different)


def test_inception_score_is_the_exponentiated_mean_kl():
    """exp(E_x KL(p(y|x) || p(y))) per split: 1 when every sample has the same prediction, the
    number of classes when each is sure and the classes are balanced."""
    assert metrics.inception_score(np.full((20, 4), 0.25), splits=2) == (pytest.approx(1.0), 0.0)
    sure = np.eye(4)[np.arange(48) % 4]  # every split of 12 balanced
    mean, std = metrics.inception_score(sure, splits=4)
    assert mean == pytest.approx(4.0, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(5), size=30)
    kl = np.sum(p * (np.log(p) - np.log(p.mean(axis=0))), axis=1)
    assert metrics.inception_score(p, splits=1)[0] == pytest.approx(np.exp(kl.mean()))


def test_evaluate_with_full_inception_weights_gives_fid_kid_and_is(tmp_path):
    """The full weights file (with ImageNet's 1000 classes) adds the Inception Score; random
    weights stand in for ImageNet's, through the same loader."""
    path = str(tmp_path / "inception.weights.h5")
    keras.applications.InceptionV3(weights=None, include_top=True).save_weights(path)
    out = tmp_path / "eval.json"
    assert cli.main(["evaluate", make_run(tmp_path / "run"), "--out", str(out), "--num", "12",
                     "--inception-weights", path, "--cache-dir", str(tmp_path / "cache")]) == 0
    results = json.loads(out.read_text())
    assert {"fid", "kid", "kid_std", "inception_score", "inception_score_std"} <= set(results)
    assert 1.0 <= results["inception_score"] <= 1000


def make_run(path, dataset="digits", arch="dcgan"):
    """A run directory as training leaves it, with small untrained models."""
    point = dataset.startswith("toy:")
    generator, critic = models.build_pair(arch, 16, 1, latent_dim=2 if point else 8, filters=8,
                                          point_dim=2 if point else None)
    path.mkdir()
    generator.save(path / "generator.keras")
    critic.save(path / "critic.keras")
    (path / "config.json").write_text(json.dumps(
        {"dataset": dataset, "arch": arch, "image_size": 16, "channels": 1,
         "latent_dim": 2 if point else 8, "seed": 0}))
    return str(path)


def test_evaluate_cli_on_digits(tmp_path, cache_dir, classifier):
    out = tmp_path / "eval" / "digits.json"
    assert cli.main(["evaluate", make_run(tmp_path / "run"), "--out", str(out), "--num", "200",
                     "--cache-dir", cache_dir]) == 0
    results = json.loads(out.read_text())
    assert {"sliced_wasserstein", "sliced_wasserstein_levels", "classifier_fd", "mode_coverage",
            "class_histogram", "num_samples", "generator_iteration"} <= set(results)
    assert results["num_samples"] == 200 and results["generator_iteration"] is None
    assert "fid" not in results and "w1" not in results


def test_evaluate_cli_on_toy_points(tmp_path):
    out = tmp_path / "toy.json"
    run = make_run(tmp_path / "run", dataset="toy:8gaussians", arch="mlp")
    assert cli.main(["evaluate", run, "--out", str(out), "--num", "300"]) == 0
    results = json.loads(out.read_text())
    assert {"w1", "modes_covered", "num_modes", "high_quality", "num_samples"} <= set(results)
    assert results["w1"] > 0 and results["num_modes"] == 8


def test_evaluate_cli_errors(tmp_path, capsys):
    assert cli.main(["evaluate", str(tmp_path), "--out", str(tmp_path / "x.json")]) == 2
    assert "no config.json" in capsys.readouterr().err
    run = make_run(tmp_path / "run")
    assert cli.main(["evaluate", run, "--dataset", "toy:8gaussians",
                     "--out", str(tmp_path / "x.json")]) == 2
    assert "cannot be compared" in capsys.readouterr().err
    assert cli.main(["evaluate", run, "--num", "20", "--inception-weights",
                     str(tmp_path / "nope.h5"), "--out", str(tmp_path / "x.json")]) == 2
    assert "no InceptionV3 weights file" in capsys.readouterr().err
