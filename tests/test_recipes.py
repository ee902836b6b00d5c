"""The photo recipe's options (issue 21): ``--recipe``, the lazy and zero-centred gradient penalty,
ProGAN's drift term, two learning rates, a critic without normalisation; as users run them, in fresh
processes: recorded in config.json, exact across a stop and a resume (the lazy penalty's pattern
included), and the same on two devices."""
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import (TINY_FLAGS, metrics_rows, resumed_and_two_device_runs, saved_weights,
                     tiny_config, wgan_tf)
from wgan_tf import build, config, distribute, lipschitz, models
from wgan_tf.wgan import WGAN

pytestmark = pytest.mark.timeout(600)


def test_a_recipe_is_a_group_of_defaults_that_flags_override():
    fast = config.TrainConfig(recipe="fast", dataset="folder:photos")
    for name, value in config.RECIPES["fast"].items():
        assert getattr(fast, name) == value, name
    assert config.TrainConfig(recipe="fast", n_critic=3, ema=0.0, augment="none").n_critic == 3
    off = config.TrainConfig(recipe="fast", ema=0.0, augment="none")
    assert off.ema is None and off.augment is None  # a recipe's additions can be switched off
    # The paper's settings stay the defaults, for LSUN bedrooms as for everything else.
    paper = config.TrainConfig(dataset="lsun/bedroom")
    assert (paper.recipe, paper.penalty, paper.optimizer, paper.learning_rate, paper.n_critic,
            paper.precision, paper.ema, paper.augment, paper.critic_normalization,
            paper.penalty_every, paper.drift, paper.generator_learning_rate) == (
        "paper", "clip", "rmsprop", 5e-5, 5, "float32", None, None, "batch", 1, 0.0, 5e-5)
    gp = config.TrainConfig(penalty="gp")
    assert (gp.critic_normalization, gp.gp_target, gp.learning_rate, gp.beta_1) == (
        "layer", 1.0, 1e-4, 0.0)


@pytest.mark.parametrize("flags,message", [
    (["--penalty-every", "2"], "--penalty-every and --gp-target shape the gradient penalty: "
                               "they need --penalty gp"),
    (["--penalty", "gp", "--critic-normalization", "batch"], "--critic-normalization batch makes "
     "each sample's gradient penalty depend on the others (WGAN-GP, Sec. 4): use layer or none"),
    (["--model", "gan", "--drift", "0.001"], "--drift is for the Wasserstein critic (--model wgan)"),
    (["--recipe", "quick"], "argument --recipe: invalid choice: 'quick' (choose from 'paper', 'fast')"),
    (["--penalty", "gp", "--generator-learning-rate", "-1"],
     "generator-learning-rate must be positive, got -1.0"),
])
def test_bad_recipe_options_are_refused_in_one_line(tmp_path, flags, message):
    result = wgan_tf("train", *TINY_FLAGS, *flags, "--out", tmp_path / "run", check=False)
    assert result.returncode == 2 and message in result.stderr and \
        len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_lazy_penalty_drift_and_two_learning_rates_from_python():
    """Critic iterations 0, 3, 6, ... compute the penalty, weighted 3 x lambda; the others only
    the estimate and the drift, 1e-3 x E[f(x)^2] on the real images; the generator's optimizer
    has its own learning rate."""
    keras.utils.set_random_seed(0)
    cfg = tiny_config(penalty="gp", n_critic=1, penalty_every=3, drift=1e-3, gp_target=0.0,
                      critic_normalization="none", generator_learning_rate=3e-5)
    model = build.build_model(cfg, distribute.make_strategy(1))
    assert float(model.generator_optimizer.learning_rate) == pytest.approx(3e-5)
    assert float(model.critic_optimizer.learning_rate) == pytest.approx(cfg.learning_rate)
    assert not any("ln" in layer.name for layer in model.critic.layers)
    images = tf.random.uniform([8, 16, 16, 1], -1, 1, seed=1)
    batches = tf.data.Dataset.from_tensors(images).repeat()
    schedules = []
    for _ in range(4):
        schedules.append(model.step_schedule())
        noise = model.draw_noise(8)
        critic_weights = [w.numpy() for w in model.critic.weights]
        generator_weights = [w.numpy() for w in model.generator.weights]
        logs = model.fit(batches, steps_per_epoch=1, epochs=1, verbose=0).history
        after = [w.numpy() for w in model.critic.weights]
        for w, value in zip(model.critic.weights, critic_weights):
            w.assign(value)
        for w, value in zip(model.generator.weights, generator_weights):
            w.assign(value)
        fake = model.generator(noise["critic"][0]["z"], training=True)
        real_scores = model.critic(images, training=True)
        loss = -(float(np.mean(real_scores)) - float(np.mean(model.critic(fake, training=True))))
        loss += 1e-3 * float(np.mean(np.square(real_scores)))
        if schedules[-1][0]:
            penalty = float(np.mean(lipschitz.gradient_penalty(
                model.critic, images, fake, noise["critic"][0]["mix"], target=0.0)))
            np.testing.assert_allclose(logs["gradient_penalty"][0], penalty, rtol=1e-4)
            loss += 3 * cfg.gp_weight * penalty
        else:
            assert np.isnan(logs["gradient_penalty"][0])
        np.testing.assert_allclose(logs["critic_loss"][0], loss, rtol=1e-4, atol=1e-6)
        for w, value in zip(model.critic.weights, after):
            w.assign(value)
    assert schedules == [(True,), (False,), (False,), (True,)]


def test_the_zero_centred_penalty_is_the_squared_gradient_norm():
    critic = models.mlp_critic(input_shape=(2,), units=8)
    real, fake = tf.random.normal([5, 2], seed=2), tf.random.normal([5, 2], seed=3)
    mix = tf.random.uniform([5], seed=4)
    x_hat = lipschitz.interpolate(real, fake, mix)
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        scores = critic(x_hat)
    squared = tf.reduce_sum(tf.square(tape.gradient(scores, x_hat)), axis=1)
    np.testing.assert_allclose(lipschitz.gradient_penalty(critic, real, fake, mix, target=0.0),
                               squared, rtol=1e-5, atol=1e-9)


FAST = [*TINY_FLAGS, "--recipe", "fast", "--n-critic", 1, "--penalty-every", 2, "--log-every", 1,
        "--checkpoint-every", 100, "--sample-every", 100]


@pytest.fixture(scope="module")
def fast_runs(tmp_path_factory):
    """The fast recipe (bfloat16, EMA, DiffAugment, a lazy penalty every 2nd critic iteration)
    for 5 iterations straight, stopped at 3 and resumed; and in float32 on one and two devices."""
    return resumed_and_two_device_runs(tmp_path_factory.mktemp("fast"), FAST,
                                       ["--precision", "float32"])


def test_the_recipe_is_recorded_in_config_json(fast_runs):
    stored = json.loads(open(os.path.join(fast_runs["straight"], "config.json")).read())
    assert stored["recipe"] == "fast"
    expected = {**config.RECIPES["fast"], "penalty_every": 2, "filters": 8}
    assert {k: stored[k] for k in expected} == expected
    rows = metrics_rows(fast_runs["straight"])
    penalized = [r["generator_iteration"] for r in rows if r["gradient_penalty"] not in ("", "nan")]
    assert penalized == ["1", "3", "5"]  # critic iterations 0, 2, 4


def test_the_recipe_resumes_exactly(fast_runs):
    for name in ("generator", "critic", "generator_ema"):
        for a, b in zip(saved_weights(fast_runs["straight"], name),
                        saved_weights(fast_runs["resumed"], name), strict=True):
            np.testing.assert_array_equal(a, b)
    assert metrics_rows(fast_runs["straight"]) == metrics_rows(fast_runs["resumed"])


def test_the_recipe_is_the_same_on_two_devices(fast_runs):
    for name in ("generator", "critic", "generator_ema"):
        for a, b in zip(saved_weights(fast_runs["one"], name), saved_weights(fast_runs["two"], name),
                        strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    for a, b in zip(metrics_rows(fast_runs["one"]), metrics_rows(fast_runs["two"]), strict=True):
        for key in ("wasserstein", "critic_loss", "generator_loss"):
            np.testing.assert_allclose(float(a[key]), float(b[key]), rtol=1e-4, atol=1e-6)
