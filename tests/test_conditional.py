"""Conditional models (``--conditional``) with both critics, the projection critic (the default)
and the WGAN-GP paper's auxiliary classifier (``--conditioning acgan``): labelled data, their
losses, one and two devices, stop and resume, grids with one row per class, and their measures,
through ``wgan-tf train``, ``evaluate`` and ``explain`` in fresh processes."""
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers import TINY_FLAGS, metrics_rows, saved_weights, wgan_tf
from wgan_tf import config, losses, models
from wgan_tf.wgan import WGAN

pytestmark = pytest.mark.timeout(600)

CONDITIONAL = [*TINY_FLAGS, "--conditional", "--penalty", "gp", "--log-every", 1,
               "--checkpoint-every", 100]




@pytest.fixture(scope="module", params=["projection", "acgan"])
def runs(request, tmp_path_factory):
    """Conditional digits for 3 iterations on one device, on two, and stopped at 2 then resumed,
    with each critic."""
    root = tmp_path_factory.mktemp(f"conditional-{request.param}")
    flags = [*CONDITIONAL, "--conditioning", request.param]
    names = {name: str(root / name) for name in ("one", "two", "resumed")}
    wgan_tf("train", *flags, "--steps", 3, "--out", names["one"])
    wgan_tf("train", *flags, "--steps", 3, "--devices", 2, "--out", names["two"])
    wgan_tf("train", *flags, "--steps", 2, "--out", names["resumed"])
    rerun = wgan_tf("train", *flags, "--steps", 3, "--out", names["resumed"])
    assert "resuming at generator iteration 2 of 3" in rerun.stdout
    names["conditioning"] = request.param
    return names


def _losses(runs):
    return ("wasserstein", "class_loss", "generated_class_loss") \
        if runs["conditioning"] == "acgan" else ("wasserstein", "critic_loss", "generator_loss")


def test_a_conditional_run_records_its_classes_and_losses(runs):
    stored = json.loads(open(os.path.join(runs["one"], "config.json")).read())
    assert stored["conditional"] is True and stored["class_names"] == [str(d) for d in range(10)]
    assert stored["conditioning"] == runs["conditioning"]
    generator = keras.saving.load_model(os.path.join(runs["one"], "generator.keras"))
    assert models.is_conditional(generator)
    critic = keras.saving.load_model(os.path.join(runs["one"], "critic.keras"))
    assert models.critic_conditioning(critic) == runs["conditioning"]
    if runs["conditioning"] == "acgan":
        assert (stored["class_weight"], stored["generated_class_weight"]) == (1.0, 0.1)
        for row in metrics_rows(runs["one"]):
            assert float(row["class_loss"]) > 0 and float(row["generated_class_loss"]) > 0
        assert [tuple(o.shape) for o in critic.outputs] == [(None, 1), (None, 10)]
        assert "class_input" not in [layer.name for layer in generator.layers]  # the paper's
    else:  # the class is inside the score: no auxiliary loss, no weights to tune
        assert stored["class_weight"] is None and "class_loss" not in metrics_rows(runs["one"])[0]
        # and the generator takes the class at its input too, beside the latent
        assert generator.get_layer("class_input").output.shape[-1] == 8
        assert [tuple(i.shape) for i in critic.inputs] == [(None, 16, 16, 1), (None,)]
        assert tuple(critic.outputs[0].shape) == (None, 1)


def test_resume_is_exact(runs):
    for name in ("generator", "critic"):
        for a, b in zip(saved_weights(runs["one"], name), saved_weights(runs["resumed"], name), strict=True):
            np.testing.assert_array_equal(a, b)
    assert metrics_rows(runs["one"]) == metrics_rows(runs["resumed"])


def test_two_devices_train_one_devices_run(runs):
    for name in ("generator", "critic"):
        for a, b in zip(saved_weights(runs["one"], name), saved_weights(runs["two"], name), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    for a, b in zip(metrics_rows(runs["one"]), metrics_rows(runs["two"]), strict=True):
        for key in _losses(runs):
            np.testing.assert_allclose(float(a[key]), float(b[key]), rtol=1e-4, atol=1e-6)


def test_the_grid_has_one_row_per_class(runs):
    grid = Image.open(os.path.join(runs["one"], "samples", "iter_000003.png"))
    # 16x16 digits with the grid's 2-pixel border, 8 columns and 10 rows, enlarged to at least
    # 256 pixels wide.
    scale = grid.size[0] // (8 * 18 + 2)
    assert grid.size == (scale * (8 * 18 + 2), scale * (10 * 18 + 2))


def test_evaluate_measures_every_class(runs, tmp_path):
    out = tmp_path / "eval.json"
    wgan_tf("evaluate", runs["one"], "--num", 100, "--out", out)
    results = json.loads(out.read_text())
    assert 0 <= results["class_accuracy"] <= 1
    assert sorted(results["per_class_classifier_fd"]) == [str(d) for d in range(10)]


def test_explain_shows_the_critic_of_each_images_class(runs, tmp_path):
    """A projection critic scores an image as a class: explain binds each real image's label and
    each generated image's class asked for, and gets the critic's own scores."""
    out = tmp_path / "explain.png"
    assert wgan_tf("explain", runs["one"], "--num", 4, "--out", out).stdout.strip() == str(out)
    assert Image.open(out).size[0] > 300
    if runs["conditioning"] != "projection":
        return
    from wgan_tf.explain import scores_of_classes

    critic = keras.saving.load_model(os.path.join(runs["one"], "critic.keras"))
    images = tf.random.uniform([4, 16, 16, 1], -1, 1, seed=0)
    labels = tf.constant([3, 1, 4, 1])
    np.testing.assert_allclose(scores_of_classes(critic, labels)(images).numpy(),
                               critic([images, labels]).numpy(), rtol=1e-5, atol=1e-6)


def test_conditioning_options_are_refused_in_one_line_where_they_mean_nothing(tmp_path):
    result = wgan_tf("train", *TINY_FLAGS, "--conditional", "--class-weight", 2,
                     "--out", tmp_path / "run", check=False)
    assert result.returncode == 2 and result.stderr.strip() == (
        "wgan-tf train: error: --class-weight and --generated-class-weight weigh the AC-GAN "
        "head's cross-entropy: they need --conditioning acgan")
    result = wgan_tf("train", *TINY_FLAGS, "--conditioning", "acgan", "--out", tmp_path / "run",
                     check=False)
    assert result.returncode == 2 and "are for conditional runs (--conditional)" in result.stderr


def test_unlabelled_data_and_other_architectures_are_refused_in_one_line(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(folder / "a.png")
    result = wgan_tf("train", *TINY_FLAGS, "--conditional", "--dataset", f"folder:{folder}",
                     "--out", tmp_path / "run", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(
        f"wgan-tf train: error: --conditional needs labelled data, and folder:{folder} has no "
        "class labels"), result.stderr
    result = wgan_tf("train", *TINY_FLAGS, "--conditional", "--arch", "mlp",
                     "--out", tmp_path / "run2", check=False)
    assert result.returncode == 2 and "--conditional needs --arch dcgan" in result.stderr


def _first_iteration(conditioning, **options):
    """(generator, critic, images, labels, the step's noise, the step's logs) of one iteration
    of a small conditional WGAN-GP whose optimizers move nothing (SGD at rate 0)."""
    keras.utils.set_random_seed(0)
    generator, critic = models.build_pair("dcgan", 16, 1, 8, 4, critic_normalization="layer",
                                          num_classes=3, conditioning=conditioning)
    model = WGAN(generator, critic, n_critic=1, penalty="gp", seed=5, **options)
    model.compile(critic_optimizer=keras.optimizers.SGD(0.0),
                  generator_optimizer=keras.optimizers.SGD(0.0), jit_compile=False)
    images = tf.random.uniform([6, 16, 16, 1], -1, 1, seed=1)
    labels = tf.constant([0, 1, 2, 0, 1, 2])
    batches = tf.data.Dataset.from_tensors((images, labels)).repeat()
    noise = model.draw_noise(6)
    logs = model.fit(batches, steps_per_epoch=1, epochs=1, verbose=0).history
    return generator, critic, images, labels, noise, logs


def test_the_step_is_the_papers_from_python():
    """``WGAN`` takes (images, labels) batches: the critic's loss adds the classifier's
    cross-entropy on the real labels (weight 1), the generator's on the classes it was asked for
    (weight 0.1). Checked on the first iteration against the losses computed directly."""
    generator, critic, images, labels, noise, logs = _first_iteration("acgan", gp_weight=0.0)
    z = noise["critic"][0]["z"]
    fake = generator([z, labels], training=True)  # the critic's fakes take the real labels
    real_scores, real_logits = critic(images, training=True)
    class_loss = float(np.mean(losses.class_cross_entropy(real_logits, labels)))
    critic_loss = float(np.mean(critic(fake, training=True)[0]) - np.mean(real_scores))
    np.testing.assert_allclose(logs["class_loss"][0], class_loss, rtol=1e-4)
    np.testing.assert_allclose(logs["critic_loss"][0],
                               critic_loss + config.CLASS_WEIGHT_CRITIC * class_loss, rtol=1e-4)
    asked = noise["generator"]["labels"]
    assert asked.dtype == tf.int32 and 0 <= int(tf.reduce_min(asked)) <= int(
        tf.reduce_max(asked)) < 3
    scores, logits = critic(generator([noise["generator"]["z"], asked], training=True),
                            training=True)
    generated = float(np.mean(losses.class_cross_entropy(logits, asked)))
    np.testing.assert_allclose(logs["generated_class_loss"][0], generated, rtol=1e-4)
    np.testing.assert_allclose(logs["generator_loss"][0],
                               -float(np.mean(scores)) + config.CLASS_WEIGHT_GENERATOR * generated,
                               rtol=1e-4)


def test_the_projection_step_is_algorithm_1_with_class_scores():
    """With a projection critic the critic's loss is E[f(G(z, y), y)] - E[f(x, y)] plus the
    gradient penalty of f(., y) at each interpolate with its own class; the generator's
    -E[f(G(z, y'), y')] for the classes y' asked for. Checked on the first iteration against the
    losses computed directly."""
    from wgan_tf import lipschitz

    generator, critic, images, labels, noise, logs = _first_iteration("projection")
    score, embedding = critic.get_layer("score"), critic.get_layer("class_embedding")
    assert models.critic_conditioning(critic) == "projection" and embedding.input_dim == 3
    fake = generator([noise["critic"][0]["z"], labels], training=True)
    estimate = float(np.mean(critic([images, labels], training=True))
                     - np.mean(critic([fake, labels], training=True)))
    penalty = float(np.mean(lipschitz.gradient_penalty(
        lambda x, training: critic([x, labels], training=training), images, fake,
        noise["critic"][0]["mix"])))
    np.testing.assert_allclose(logs["wasserstein"][0], estimate, rtol=1e-4)
    np.testing.assert_allclose(logs["gradient_penalty"][0], penalty, rtol=1e-4)
    np.testing.assert_allclose(logs["critic_loss"][0], -estimate + 10.0 * penalty, rtol=1e-4)
    asked = noise["generator"]["labels"]
    scores = critic([generator([noise["generator"]["z"], asked], training=True), asked],
                    training=True)
    np.testing.assert_allclose(logs["generator_loss"][0], -float(np.mean(scores)), rtol=1e-4)
    # The class moves the score: the same images scored as other classes score differently.
    other = critic([images, (labels + 1) % 3], training=False).numpy()
    assert not np.allclose(other, critic([images, labels], training=False).numpy())
    assert score.name == "score"
