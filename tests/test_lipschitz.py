import keras
import numpy as np
import tensorflow as tf

from wgan_tf import lipschitz, losses, models


def test_clip_weights_constrains_every_trainable_weight_including_batch_norm():
    _, critic = models.build_pair("dcgan", 16, 1, filters=8)
    lipschitz.clip_weights(critic, 0.01)
    names = [v.path for v in critic.trainable_variables]
    assert any("gamma" in n for n in names) and any("beta" in n for n in names)
    for v in critic.trainable_variables:
        assert isinstance(v.constraint, lipschitz.WeightClip)
        assert np.abs(v.numpy()).max() <= 0.01 + 1e-9
    # BN scales start at N(1, 0.02): clipping puts them at the box's edge, as the reference code.
    assert np.allclose(critic.get_layer("bn1").gamma.numpy(), 0.01)


def test_optimizer_applies_clip_after_update():
    _, critic = models.build_pair("mlp", latent_dim=2, point_dim=2)
    lipschitz.clip_weights(critic, 0.01)
    opt = keras.optimizers.SGD(10.0)  # a step far outside the box
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(critic(tf.ones([4, 2])))
    opt.apply(tape.gradient(loss, critic.trainable_variables), critic.trainable_variables)
    assert max(np.abs(v.numpy()).max() for v in critic.trainable_variables) <= 0.01 + 1e-9
    assert max(np.abs(v.numpy()).max() for v in critic.trainable_variables) > 0.0099


def test_gradient_penalty_of_linear_critic_is_exact():
    w = np.array([[3.0], [4.0]], np.float32)  # ||grad|| = 5 everywhere
    critic = lambda x, training=False: tf.matmul(x, w)  # noqa: E731
    real = tf.random.normal([6, 2])
    fake = tf.random.normal([6, 2])
    penalty = lipschitz.gradient_penalty(critic, real, fake, tf.random.uniform([6]))
    np.testing.assert_allclose(penalty.numpy(), (5.0 - 1.0) ** 2, rtol=1e-5)


def test_gradient_penalty_of_flat_critic_has_finite_gradient():
    v = tf.Variable(0.0)
    # Dead ReLUs: the input gradient is exactly zero, where sqrt's slope is infinite.
    critic = lambda x, training=False: v * tf.reduce_sum(tf.nn.relu(x - 10.0), 1, keepdims=True)  # noqa: E731,E501
    with tf.GradientTape() as tape:
        penalty = tf.reduce_mean(lipschitz.gradient_penalty(
            critic, tf.ones([3, 2]), tf.zeros([3, 2]), tf.fill([3], 0.5)))
    grad = tape.gradient(penalty, v)
    assert np.isclose(penalty.numpy(), 1.0, atol=1e-5)
    assert np.isfinite(grad.numpy())


def test_interpolation_uses_one_factor_per_sample():
    real, fake = tf.ones([2, 3, 3, 1]), tf.zeros([2, 3, 3, 1])
    mixed = lipschitz.interpolate(real, fake, tf.constant([0.25, 0.75])).numpy()
    assert np.allclose(mixed[0], 0.25) and np.allclose(mixed[1], 0.75)


def test_wasserstein_losses():
    real, fake = tf.constant([[2.0], [4.0]]), tf.constant([[1.0], [0.0]])
    assert np.allclose(losses.wasserstein_critic_loss(real, fake), [-1.0, -4.0])
    assert np.allclose(losses.wasserstein_generator_loss(fake), [-1.0, 0.0])


def test_gan_losses_are_cross_entropies():
    real, fake = tf.constant([[0.0], [2.0]]), tf.constant([[0.0], [-1.0]])
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    expected = -np.log(sigmoid(np.array([0.0, 2.0]))) - np.log(1 - sigmoid(np.array([0.0, -1.0])))
    np.testing.assert_allclose(losses.gan_discriminator_loss(real, fake), expected, rtol=1e-6)
    np.testing.assert_allclose(losses.gan_generator_loss(fake),
                               -np.log(sigmoid(np.array([0.0, -1.0]))), rtol=1e-6)
    np.testing.assert_allclose(losses.gan_minimax_generator_loss(fake),
                               np.log(1 - sigmoid(np.array([0.0, -1.0]))), rtol=1e-6)
