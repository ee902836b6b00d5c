"""The analysis probes (wgan_tf.probes) and the experiments' networks (end of wgan_tf.models)."""
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from wgan_tf import lipschitz, models, probes, rng
from wgan_tf.errors import ConfigError


def segment(x, batch_size, seed):
    """Batches of the uniform distribution on the vertical segment {x} x [0, 1]."""
    return tf.data.Dataset.range(2**62).map(lambda i: tf.stack(
        [tf.fill([batch_size], x), rng.uniform([batch_size], seed, 0, i)], axis=1))


def small_critic(units=32, seed=0):
    keras.utils.set_random_seed(seed)
    return models.mlp_critic(input_shape=(2,), units=units)


def test_gradient_penalty_critic_trained_alone_estimates_the_known_w1():
    # Two parallel segments 0.5 apart: W1 = 0.5 (the WGAN paper's Example 1).
    critic = small_critic()
    history = probes.train_critic(critic, segment(0.0, 128, 1), segment(0.5, 128, 2), steps=300,
                                  penalty="gp", optimizer=keras.optimizers.Adam(1e-3, 0.5, 0.9))
    assert history.shape == (300,)
    real = next(iter(segment(0.0, 2000, 3))).numpy()
    fake = next(iter(segment(0.5, 2000, 4))).numpy()
    assert probes.estimate(critic, real, fake) == pytest.approx(0.5, abs=0.06)
    assert probes.estimate(critic, real, real) == pytest.approx(0.0, abs=1e-6)


def test_clipped_critic_trained_alone_stays_in_the_box_and_estimates_k_times_w1():
    critic = small_critic()
    probes.train_critic(critic, segment(0.0, 128, 1), segment(0.5, 128, 2), steps=100,
                        penalty="clip", clip_value=0.05,
                        optimizer=keras.optimizers.RMSprop(1e-3))
    weights = np.concatenate([v.numpy().ravel() for v in critic.trainable_variables])
    assert np.abs(weights).max() <= 0.05 + 1e-7
    assert all(isinstance(v.constraint, lipschitz.WeightClip) for v in critic.trainable_variables)
    real = next(iter(segment(0.0, 1000, 3))).numpy()
    near, far = (probes.estimate(critic, real, next(iter(segment(x, 1000, 4))).numpy())
                 for x in (0.25, 0.5))
    assert 0 < near < far  # K * W1 grows with W1


def test_gan_discriminator_trained_alone_estimates_js_log_2_for_disjoint_supports():
    critic = small_critic()
    history = probes.train_critic(critic, segment(0.0, 128, 1), segment(0.5, 128, 2), steps=300,
                                  objective="gan", optimizer=keras.optimizers.Adam(1e-2))
    assert history[-1] == pytest.approx(np.log(2), abs=0.02)
    assert history[0] < 0.1  # an untrained discriminator: about 0


def test_train_critic_rejects_bad_arguments_and_short_streams():
    critic = small_critic()
    with pytest.raises(ValueError, match="objective"):
        probes.train_critic(critic, [], [], 1, objective="hinge")
    with pytest.raises(ValueError, match="ran out after 2 of 5"):
        probes.train_critic(critic, np.zeros([2, 4, 2]), np.ones([2, 4, 2]), 5)


def test_layer_gradient_norms_equal_a_direct_gradient_tape_computation():
    keras.utils.set_random_seed(3)
    critic = models.deep_mlp_critic(input_shape=(2,), depth=4, units=16)
    real, fake = np.random.default_rng(0).normal(size=(2, 10, 2)).astype(np.float32)
    norms = probes.layer_gradient_norms(critic, real, fake)
    assert list(norms) == ["hidden0", "hidden1", "hidden2", "hidden3"]

    x = tf.constant(np.concatenate([real, fake]))
    with tf.GradientTape() as tape:
        activations = []
        for i in range(4):
            x = critic.get_layer(f"hidden{i}")(x)
            activations.append(x)
        scores = critic.get_layer("score")(x)
        loss = tf.reduce_mean(scores[10:]) - tf.reduce_mean(scores[:10])
    expected = [float(tf.norm(g)) for g in tape.gradient(loss, activations)]
    np.testing.assert_allclose(list(norms.values()), expected, rtol=1e-5)
    assert len(set(np.round(expected, 8))) == 4  # four different layers, not one number


def test_layer_gradient_norms_of_a_linear_chain_are_known():
    # score = w2 . (W1 x): d loss / d hidden = (w2 / B) for each fake row, -(w2 / B) for each real.
    inputs = keras.Input((2,))
    hidden = keras.layers.Dense(3, use_bias=False, name="hidden", kernel_initializer="ones")(inputs)
    score = keras.layers.Dense(1, use_bias=False, name="score",
                               kernel_initializer=keras.initializers.Constant(2.0))(hidden)
    critic = keras.Model(inputs, score)
    norms = probes.layer_gradient_norms(critic, np.zeros([4, 2]), np.ones([4, 2]))
    # 8 rows, each gradient row (2/4, 2/4, 2/4): norm sqrt(8 * 3 * 0.25).
    assert norms == {"hidden": pytest.approx(np.sqrt(8 * 3 * 0.25))}


def test_input_gradients_and_value_surface_of_a_linear_critic():
    inputs = keras.Input((2,))
    critic = keras.Model(inputs, keras.layers.Dense(
        1, kernel_initializer=keras.initializers.Constant([[3.0], [-4.0]]),
        bias_initializer=keras.initializers.Constant(1.0))(inputs))
    scores, norms = probes.input_gradients(critic, [[0.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(scores, [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(norms, [5.0, 5.0], rtol=1e-6)
    xs, ys, values = probes.value_surface(critic, (0, 1), (-1, 1), resolution=5)
    assert values.shape == (5, 5)
    # values[i, j] is the score at (xs[j], ys[i]): contour(xs, ys, values)'s layout.
    np.testing.assert_allclose(values, 3 * xs[None, :] - 4 * ys[:, None] + 1, atol=1e-5)


def test_critic_weights_are_every_kernel_weight():
    critic = models.deep_mlp_critic(depth=2, units=4)
    assert probes.critic_weights(critic).shape == (2 * 4 + 4 * 4 + 4 * 1,)


def test_parallel_line_generator_is_uniform_on_its_segment_with_a_gradient_for_theta():
    generator = models.parallel_line_generator(theta=0.7)
    points = generator(rng.normal([4000, 1], 0, 0, 0)).numpy()
    np.testing.assert_allclose(points[:, 0], 0.7)
    assert points[:, 1].min() >= 0 and points[:, 1].max() <= 1
    assert np.histogram(points[:, 1], bins=4, range=(0, 1))[0] == pytest.approx([1000] * 4, abs=90)
    assert [v.name for v in generator.trainable_variables] == ["theta"]
    with tf.GradientTape() as tape:
        mean_x = tf.reduce_mean(generator(tf.zeros([3, 1]))[:, 0])
    assert tape.gradient(mean_x, generator.trainable_variables[0]).numpy() == pytest.approx(1.0)


@pytest.mark.parametrize("depth", [4, 8, 12, 20])
def test_dcgan_variants_have_the_drawn_depth(depth):
    generator = models.dcgan_variant_generator(depth=depth, filters=4, latent_dim=8,
                                               nonlinearity="smooth_elu", batch_norm=True)
    critic = models.dcgan_variant_critic(depth=depth, filters=4, nonlinearity="tanh",
                                         normalization="layer")
    for net in (generator, critic):
        assert sum(getattr(layer, "kernel", None) is not None for layer in net.layers) == depth
    assert generator(tf.zeros([2, 8])).shape == (2, 16, 16, 1)
    assert critic(tf.zeros([2, 16, 16, 1])).shape == (2, 1)


def test_dcgan_variants_reject_what_they_cannot_build():
    with pytest.raises(ConfigError, match="depth must be at least 3"):
        models.dcgan_variant_critic(depth=2)
    with pytest.raises(ConfigError, match="nonlinearity"):
        models.dcgan_variant_generator(nonlinearity="elu")
    with pytest.raises(ConfigError, match="16x16"):
        models.dcgan_variant_generator(image_size=32)


def test_smooth_elu_is_the_papers_softplus():
    x = np.array([-3.0, 0.0, 2.0], np.float32)
    np.testing.assert_allclose(models.smooth_elu(x), np.log1p(np.exp(2 * x + 2)) / 2 - 1,
                               atol=1e-6)


def test_the_documented_replot_command_redraws_every_figure_from_its_json(tmp_path):
    # docs/RESULTS.md: `experiments/critic_claims.py all --replot`, on the committed results.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    names = ["parallel-lines", "optimal-critic", "value-surfaces", "gradient-norms",
             "random-architectures"]
    (tmp_path / "results").mkdir()
    for name in names:
        shutil.copy(os.path.join(root, "docs", "results", f"{name}.json"), tmp_path / "results")
    done = subprocess.run([sys.executable, os.path.join(root, "experiments", "critic_claims.py"),
                           "all", "--replot", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(os.listdir(tmp_path / "figures")) == sorted(f"{n}.png" for n in names)
