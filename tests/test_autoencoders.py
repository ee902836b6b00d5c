"""Wasserstein auto-encoders in-process: the MMD estimator and sharpness against their formulas, the
networks, the configuration, and one and two replicas computing the same WAE-MMD step."""
import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import tiny_config
from wgan_tf import autoencoder_models as nets
from wgan_tf import config, data, distribute, losses, metrics, replicas
from wgan_tf.errors import ConfigError
from wgan_tf.vae import VAE
from wgan_tf.wae import WAE


# --- imq_mmd ------------------------------------------------------------------------------------

def direct_imq_mmd(qz, pz, sigma_z):
    """The issue's formula, term by term in float64."""
    n, d = qz.shape
    total = 0.0
    for s in (0.1, 0.2, 0.5, 1, 2, 5, 10):
        c = 2 * d * sigma_z ** 2 * s
        k = lambda x, y: c / (c + np.sum((x - y) ** 2))  # noqa: E731
        within = sum(k(qz[i], qz[j]) + k(pz[i], pz[j])
                     for i, j in itertools.product(range(n), repeat=2) if i != j)
        cross = sum(k(qz[i], pz[j]) for i, j in itertools.product(range(n), repeat=2))
        total += within / (n * (n - 1)) - 2 * cross / n ** 2
    return total


@pytest.mark.parametrize("sigma_z", [1.0, 1.7])
def test_imq_mmd_is_the_formula(sigma_z):
    rng = np.random.default_rng(0)
    qz, pz = rng.normal(0.3, 1.2, (11, 5)), rng.normal(0, sigma_z, (11, 5))
    value = losses.imq_mmd(tf.constant(qz, tf.float32), tf.constant(pz, tf.float32), sigma_z)
    assert value.shape == ()
    np.testing.assert_allclose(float(value), direct_imq_mmd(qz, pz, sigma_z), rtol=1e-4,
                               atol=1e-6)


def test_imq_mmd_is_unbiased_under_the_prior_and_positive_off_it():
    rng = np.random.default_rng(1)
    draws, n, d = 200, 32, 8
    mmd = tf.function(losses.imq_mmd)

    def values(qz_scale, qz_shift):
        return np.array([float(mmd(tf.constant(rng.normal(qz_shift, qz_scale, (n, d)), tf.float32),
                                   tf.constant(rng.normal(0, 1, (n, d)), tf.float32)))
                         for _ in range(draws)])

    null = values(1.0, 0.0)
    stderr = null.std() / np.sqrt(draws)
    assert abs(null.mean()) < 3 * stderr
    assert (null < 0).any()  # unbiased, so sometimes negative, and not clipped
    for off in (values(1.0, 0.5), values(0.5, 0.0)):  # shifted codes, collapsed codes
        assert off.mean() > 0.05 and off.mean() > 20 * stderr


# --- sharpness ----------------------------------------------------------------------------------

def direct_sharpness(image):
    gray = image[..., 0] if image.shape[-1] == 1 else image @ np.array([0.2989, 0.5870, 0.1140])
    h, w = gray.shape
    response = np.array([[gray[i - 1, j] + gray[i + 1, j] + gray[i, j - 1] + gray[i, j + 1]
                          - 4 * gray[i, j] for j in range(1, w - 1)] for i in range(1, h - 1)])
    return np.mean((response - response.mean()) ** 2)


@pytest.mark.parametrize("channels", [1, 3])
def test_sharpness_is_the_formula(channels):
    images = np.random.default_rng(2).uniform(-1, 1, (3, 9, 7, channels)).astype(np.float32)
    values = metrics.sharpness(images)
    assert values.shape == (3,)
    np.testing.assert_allclose(values, [direct_sharpness(x) for x in images], rtol=1e-5)


def test_blur_lowers_sharpness():
    digits = data.builtin.scale_to_unit(data.builtin.digits_array(16, 3)[0][:20]).numpy()
    blurred = tf.nn.avg_pool2d(digits, 3, 1, "SAME").numpy()
    assert (metrics.sharpness(blurred) < metrics.sharpness(digits)).all()
    assert metrics.sharpness(np.zeros((1, 8, 8, 1))).tolist() == [0.0]


# --- networks and configuration -----------------------------------------------------------------

@pytest.mark.parametrize("size,encoder_convs,decoder_deconvs,kernel", [
    (16, 3, 3, 4), (32, 4, 3, 4), (64, 4, 4, 5)])
def test_networks_are_sized_for_the_image(size, encoder_convs, decoder_deconvs, kernel):
    encoder = nets.encoder(size, 3, 8, filters=32)
    decoder = nets.decoder(size, 3, 8, filters=32)
    convs = [l for l in encoder.layers if isinstance(l, keras.layers.Conv2D)]
    deconvs = [l for l in decoder.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    assert [l.filters for l in convs] == [32 // 2 ** (encoder_convs - 1 - i)
                                          for i in range(encoder_convs)]
    assert len(deconvs) == decoder_deconvs and deconvs[-1].strides == (1, 1)
    assert {l.kernel_size for l in convs + deconvs} == {(kernel, kernel)}
    assert convs[-1].output.shape[1] == max(2, size // 16)
    assert encoder.output_shape == (None, 8) and decoder.output_shape == (None, size, size, 3)
    mean, log_variance = nets.encoder(size, 3, 8, filters=32, gaussian=True).outputs
    assert mean.shape == log_variance.shape == (None, 8)
    assert nets.latent_adversary(8).output_shape == (None, 1)


def test_networks_have_the_official_initialisation():
    decoder = nets.decoder(32, 1, 8, filters=256)
    kernel = decoder.get_layer("h0_lin").kernel.numpy()
    assert abs(kernel.std() - 0.01) < 0.001 and not decoder.get_layer("h0_lin").bias.numpy().any()
    conv = nets.encoder(32, 1, 8, filters=256).get_layer("h3_conv").kernel.numpy()
    assert np.abs(conv).max() <= 0.02 + 1e-7  # truncated at two standard deviations
    bn = decoder.get_layer("h0_bn")
    assert (bn.momentum, bn.epsilon, bn.synchronized) == (0.9, 1e-5, True)


def test_config_resolves_the_official_mnist_setting():
    wae = config.TrainConfig(model="wae", dataset="digits:train")
    assert (wae.penalty, wae.latent_dim, wae.batch_size, wae.filters, wae.penalty_weight) == \
        ("mmd", 8, 100, 1024, 10.0)
    assert (wae.optimizer, wae.learning_rate, wae.beta_1) == ("adam", 1e-3, 0.5)
    assert wae.epoch_steps == 1437 // 100 and wae.adversary_learning_rate is None
    gan = config.TrainConfig(model="wae", penalty="gan", dataset="digits", batch_size=50)
    assert gan.adversary_learning_rate == 5e-4 and gan.epoch_steps == 1797 // 50
    assert config.TrainConfig(model="vae").penalty_weight == 1.0
    assert config.TrainConfig(model="wae", dataset="folder:/x").epoch_steps == 0
    assert config.TrainConfig().filters == 64 and config.TrainConfig().penalty_weight is None
    assert len(data.builtin.digits_array(16, 1, "train")[0]) == config.DATASET_SIZES["digits:train"]
    assert len(data.builtin.digits_array(16, 1, "test")[0]) == config.DATASET_SIZES["digits:test"]


@pytest.mark.parametrize("values,message", [
    (dict(model="wae", penalty="clip"), "choose mmd or gan"),
    (dict(model="vae", penalty="mmd"), "--model vae takes no --penalty"),
    (dict(model="wae", arch="mlp"), "--arch mlp is a GAN generator's"),
    (dict(model="wae", dataset="toy:8gaussians"), "trains on images"),
    (dict(model="wae", adversary_learning_rate=1e-4), "for --model wae --penalty gan"),
    (dict(penalty_weight=3.0), "are for auto-encoders"),
])
def test_config_refusals(values, message):
    with pytest.raises(ConfigError, match=message):
        config.TrainConfig(**values)


def test_learning_rate_schedule_is_the_official_manual_one():
    schedule = config.learning_rate_schedule(1e-3, epoch_steps=10)
    rates = {step: float(schedule(step)) for step in (0, 299, 300, 499, 500, 999, 1000)}
    np.testing.assert_allclose(list(rates.values()),
                               [1e-3, 1e-3, 5e-4, 5e-4, 1e-4, 1e-4, 1e-5], rtol=1e-6)
    assert config.learning_rate_schedule(1e-3, 0) == 1e-3


# --- several replicas -----------------------------------------------------------------------------

def test_gathered_statistic_share_gives_one_device_gradient():
    """A statistic of the gathered global batch, each replica taking ``replica_share`` of it,
    gives the optimizer (which sums the replicas' gradients) the one-device gradient."""
    x = tf.constant(np.random.default_rng(3).normal(size=(8, 3)), tf.float32)
    prior = tf.constant(np.random.default_rng(4).normal(size=(8, 3)), tf.float32)
    w = tf.Variable(tf.ones([3, 3]))

    def gradient():
        with tf.GradientTape() as tape:
            codes = replicas.replica_rows(x) @ w
            loss = replicas.replica_share(losses.imq_mmd(replicas.gather_rows(codes), prior))
        return tape.gradient(loss, w)

    one = gradient()
    strategy = distribute.make_strategy(2)
    per_replica = strategy.experimental_local_results(tf.function(
        lambda: strategy.run(gradient))())
    np.testing.assert_allclose(per_replica[0] + per_replica[1], one, rtol=1e-5, atol=1e-7)
    assert not np.allclose(per_replica[0], per_replica[1])  # each replica its own rows' part


def make_wae(strategy, penalty="mmd"):
    with strategy.scope():
        keras.utils.set_random_seed(5)
        model = WAE(nets.encoder(16, 1, 8, filters=8), nets.decoder(16, 1, 8, filters=8),
                    penalty=penalty, seed=3)
        # Plain SGD: Adam would hide a wrong loss scale across replicas (DESIGN, known traps).
        model.compile(autoencoder_optimizer=keras.optimizers.SGD(0.05),
                      adversary_optimizer=keras.optimizers.SGD(0.05))
    return model


def fit(model, steps=3):
    history = model.fit(data.load("digits", 16, 8, 1, seed=0), steps_per_epoch=steps, epochs=1,
                        verbose=0, shuffle=False)
    return {k: v[-1] for k, v in history.history.items()}


@pytest.mark.parametrize("penalty", ["mmd", "gan"])
def test_two_replicas_compute_the_same_wae_steps_as_one(penalty):
    one, two = make_wae(distribute.make_strategy(1), penalty), \
        make_wae(distribute.make_strategy(2), penalty)
    logs_one, logs_two = fit(one), fit(two)
    assert logs_one.keys() == logs_two.keys() and logs_one["iteration"] == 3
    for key in logs_one:
        np.testing.assert_allclose(logs_two[key], logs_one[key], rtol=1e-4, err_msg=key)
    # Batch-norm statistics included. The biases before batch norm have a gradient of zero up to
    # round-off (batch norm removes them; the official networks keep them), hence the atol.
    for w_one, w_two in zip(one.weights, two.weights):
        np.testing.assert_allclose(w_two.numpy(), w_one.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=w_one.path)


def test_mmd_over_replica_rows_alone_would_differ():
    """What the gather is for: per-replica MMDs of half batches are another quantity."""
    rng = np.random.default_rng(6)
    qz, pz = (tf.constant(rng.normal(size=(16, 4)), tf.float32) for _ in range(2))
    halves = (losses.imq_mmd(qz[:8], pz[:8]) + losses.imq_mmd(qz[8:], pz[8:])) / 2
    assert abs(float(halves) - float(losses.imq_mmd(qz, pz))) > 1e-3


def test_vae_step_reports_the_elbo_terms():
    strategy = distribute.make_strategy(1)
    with strategy.scope():
        model = VAE(nets.encoder(16, 1, 8, filters=8, gaussian=True),
                    nets.decoder(16, 1, 8, filters=8), seed=3)
        model.compile()
    logs = fit(model, 2)
    assert set(logs) == {"objective", "reconstruction_cost", "kl", "iteration"}
    np.testing.assert_allclose(logs["objective"], logs["reconstruction_cost"] + logs["kl"],
                               rtol=1e-5)
    with pytest.raises(ValueError, match="mean, log_variance"):
        VAE(nets.encoder(16, 1, 8, filters=8), nets.decoder(16, 1, 8, filters=8))


def test_tiny_config_builds_each_family():
    from wgan_tf.train import build_model

    for model, penalty in (("wae", "mmd"), ("wae", "gan"), ("vae", None)):
        built = build_model(tiny_config(model=model, penalty=penalty, n_critic=None,
                                        critic_boost=None), distribute.make_strategy(1))
        names = {"encoder", "decoder"} | ({"adversary"} if penalty == "gan" else set())
        assert set(built.networks()) == names
        assert built.sampler is built.decoder and built.latent_dim == 8
