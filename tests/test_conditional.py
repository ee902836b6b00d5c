"""The WGAN-GP paper's conditional model (``--conditional``): labelled data, the paper's losses,
one and two devices, stop and resume, grids with one row per class, and its measures, through
``wgan-tf train`` and ``wgan-tf evaluate`` in fresh processes."""
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




@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Conditional digits for 3 iterations on one device, on two, and stopped at 2 then resumed."""
    root = tmp_path_factory.mktemp("conditional")
    names = {name: str(root / name) for name in ("one", "two", "resumed")}
    wgan_tf("train", *CONDITIONAL, "--steps", 3, "--out", names["one"])
    wgan_tf("train", *CONDITIONAL, "--steps", 3, "--devices", 2, "--out", names["two"])
    wgan_tf("train", *CONDITIONAL, "--steps", 2, "--out", names["resumed"])
    rerun = wgan_tf("train", *CONDITIONAL, "--steps", 3, "--out", names["resumed"])
    assert "resuming at generator iteration 2 of 3" in rerun.stdout
    return names


def test_a_conditional_run_records_its_classes_and_losses(runs):
    stored = json.loads(open(os.path.join(runs["one"], "config.json")).read())
    assert stored["conditional"] is True and stored["class_names"] == [str(d) for d in range(10)]
    for row in metrics_rows(runs["one"]):
        assert float(row["class_loss"]) > 0 and float(row["generated_class_loss"]) > 0
    generator = keras.saving.load_model(os.path.join(runs["one"], "generator.keras"))
    assert models.is_conditional(generator)
    critic = keras.saving.load_model(os.path.join(runs["one"], "critic.keras"))
    assert [tuple(o.shape) for o in critic.outputs] == [(None, 1), (None, 10)]


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
        for key in ("wasserstein", "class_loss", "generated_class_loss"):
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


def test_the_step_is_the_papers_from_python():
    """``WGAN`` takes (images, labels) batches: the critic's loss adds the classifier's
    cross-entropy on the real labels (weight 1), the generator's on the classes it was asked for
    (weight 0.1). Checked on the first iteration against the losses computed directly."""
    keras.utils.set_random_seed(0)
    generator, critic = models.build_pair("dcgan", 16, 1, 8, 4, critic_normalization="layer",
                                          num_classes=3)
    model = WGAN(generator, critic, n_critic=1, penalty="gp", gp_weight=0.0, seed=5)
    model.compile(critic_optimizer=keras.optimizers.SGD(0.0),
                  generator_optimizer=keras.optimizers.SGD(0.0), jit_compile=False)
    images = tf.random.uniform([6, 16, 16, 1], -1, 1, seed=1)
    labels = tf.constant([0, 1, 2, 0, 1, 2])
    batches = tf.data.Dataset.from_tensors((images, labels)).repeat()
    noise = model.draw_noise(6)
    logs = model.fit(batches, steps_per_epoch=1, epochs=1, verbose=0).history
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
