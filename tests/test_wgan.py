import keras
import numpy as np
import pytest
import tensorflow as tf

from wgan_tf import config, data, distribute, gan, models, replicas
from wgan_tf.wgan import WGAN


def make_wgan(strategy, penalty="clip", arch="dcgan", optimizer=None, jit_compile=False, **kwargs):
    with strategy.scope():
        keras.utils.set_random_seed(7)
        g, c = models.build_pair(arch, 16, 1, latent_dim=8, filters=8,
                                 critic_normalization="layer" if penalty == "gp" else "batch")
        model = WGAN(g, c, penalty=penalty, seed=3, **kwargs)
        model.compile(jit_compile=jit_compile, critic_optimizer=optimizer and optimizer(),
                      generator_optimizer=optimizer and optimizer())
    return model


def fit(model, steps, batch_size=8):
    dataset = data.load("digits", 16, batch_size, 1, seed=0)
    history = model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return {k: v[-1] for k, v in history.history.items()}


def weights(model):
    return [v.numpy() for v in model.generator.weights + model.critic.weights]


# RMSProp and Adam hardly change if the gradients are scaled by a constant, so a loss averaged over
# the replica's batch instead of the global one would hide from them; plain SGD shows it.
@pytest.mark.parametrize("penalty,optimizer", [
    ("clip", None), ("gp", None), ("gp", lambda: keras.optimizers.SGD(1e-3))])
def test_two_replicas_compute_the_same_steps_as_one(penalty, optimizer):
    one = make_wgan(distribute.make_strategy(1), penalty, optimizer=optimizer, n_critic=2, critic_boost=False)
    two = make_wgan(distribute.make_strategy(2), penalty, optimizer=optimizer, n_critic=2, critic_boost=False)
    assert two.distribute_strategy.num_replicas_in_sync == 2
    logs_one, logs_two = fit(one, 3), fit(two, 3)
    assert logs_one.keys() == logs_two.keys()
    for key in logs_one:
        np.testing.assert_allclose(logs_two[key], logs_one[key], rtol=1e-4, atol=1e-6, err_msg=key)
    # All weights, batch-norm moving statistics included: a replica normalising with its own half
    # of the batch, or drawing the same latent rows as the other, would show here.
    for w_one, w_two in zip(weights(one), weights(two)):
        np.testing.assert_allclose(w_two, w_one, rtol=1e-4, atol=1e-5)
    assert logs_one["generator_iteration"] == 3 and logs_one["critic_iteration"] == 6


def test_replicas_take_disjoint_rows_of_one_global_latent_batch():
    strategy = distribute.make_strategy(2)
    model = make_wgan(strategy)
    noise = model.critic_noise(8, tf.constant(5, tf.int64))

    @tf.function
    def rows():
        return strategy.run(lambda: replicas.replica_rows(noise["z"]))

    parts = [t.numpy() for t in strategy.experimental_local_results(rows())]
    assert [p.shape for p in parts] == [(4, 8), (4, 8)]
    np.testing.assert_array_equal(np.concatenate(parts), noise["z"].numpy())
    assert not np.allclose(parts[0], parts[1])


def test_critic_weights_never_leave_the_clipping_box():
    model = make_wgan(distribute.make_strategy(1), n_critic=5, critic_boost=False)
    fit(model, 4)
    for v in model.critic.trainable_variables:
        assert np.abs(v.numpy()).max() <= 0.01 + 1e-9, v.path


def test_metrics_are_the_paper_quantities():
    model = make_wgan(distribute.make_strategy(1), n_critic=1, critic_boost=False)
    logs = fit(model, 1)
    assert set(logs) == {"wasserstein", "critic_loss", "generator_loss", "generator_iteration",
                         "critic_iteration"}
    # With clipping, the critic loss is exactly minus the Wasserstein estimate.
    assert np.isclose(logs["wasserstein"], -logs["critic_loss"])
    gp = make_wgan(distribute.make_strategy(1), "gp", n_critic=1)
    logs = fit(gp, 1)
    assert np.isclose(logs["critic_loss"], -logs["wasserstein"] + 10 * logs["gradient_penalty"],
                      rtol=1e-5)


def test_critic_boost_runs_100_critic_iterations_early_on():
    assert [config.critic_iterations(g) for g in (0, 24, 25, 499, 500, 501, 1000)] == \
        [100, 100, 5, 5, 100, 5, 100]
    assert config.critic_iterations(0, boost=False) == 5
    model = make_wgan(distribute.make_strategy(1), arch="mlp", n_critic=5)
    logs = fit(model, 2)
    assert logs["critic_iteration"] == 200 and logs["generator_iteration"] == 2


def test_compile_defaults_are_the_papers_optimizers():
    model = make_wgan(distribute.make_strategy(1))
    for opt in (model.critic_optimizer, model.generator_optimizer):
        assert isinstance(opt, keras.optimizers.RMSprop)
        assert np.isclose(float(opt.learning_rate), 5e-5)
    gp = make_wgan(distribute.make_strategy(1), "gp")
    assert isinstance(gp.critic_optimizer, keras.optimizers.Adam)
    assert gp.critic_optimizer.beta_1 == 0.0 and gp.critic_optimizer.beta_2 == 0.9
    assert gp.critic_boost is False and model.critic_boost is True


def test_xla_gives_the_same_step_as_no_xla():
    # SGD: RMSProp's first steps are lr * sign(gradient), which turns float rounding differences
    # between XLA and oneDNN in near-zero gradients into differences of a whole step.
    sgd = lambda: keras.optimizers.SGD(1e-3)  # noqa: E731
    plain = make_wgan(distribute.make_strategy(1), optimizer=sgd, n_critic=2, critic_boost=False)
    xla = make_wgan(distribute.make_strategy(1), optimizer=sgd, jit_compile=True, n_critic=2,
                    critic_boost=False)
    assert xla._jit_per_replica() and not plain._jit_per_replica()
    a, b = fit(plain, 2), fit(xla, 2)
    np.testing.assert_allclose(b["wasserstein"], a["wasserstein"], rtol=1e-3, atol=1e-6)
    for w_a, w_b in zip(weights(plain), weights(xla)):
        np.testing.assert_allclose(w_b, w_a, rtol=1e-3, atol=1e-6)


def test_gan_baseline_uses_the_same_step_with_its_own_losses():
    with distribute.make_strategy(1).scope():
        keras.utils.set_random_seed(7)
        g, d = models.build_pair("dcgan", 16, 1, latent_dim=8, filters=8)
        model = gan.GAN(g, d, seed=3)
        model.compile(jit_compile=False)
    assert model.n_critic == 1 and not model.critic_boost
    assert isinstance(model.critic_optimizer, keras.optimizers.Adam)
    assert model.critic_optimizer.beta_1 == 0.5
    logs = fit(model, 2)
    assert set(logs) == {"js_divergence", "critic_loss", "generator_loss", "generator_iteration",
                         "critic_iteration"}
    assert logs["critic_iteration"] == 2
    assert np.isclose(logs["js_divergence"], np.log(2) - logs["critic_loss"] / 2, rtol=1e-5)
    # No clipping: the discriminator's weights are free to leave [-0.01, 0.01].
    assert max(np.abs(v.numpy()).max() for v in d.trainable_variables) > 0.01
