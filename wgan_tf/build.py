"""The model of a ``TrainConfig``, for every ``--model`` family, made and compiled in a strategy's
scope: the one place that knows which networks and optimizers each family trains with.

Imports run one way: this module imports the families (``wgan``, ``gan``, ``wae``, ``vae``) and
their networks; none of them imports it.
"""
import keras

from wgan_tf import autoencoder_models, data, models, precision
from wgan_tf.config import learning_rate_schedule, make_optimizer
from wgan_tf.gan import GAN
from wgan_tf.vae import VAE
from wgan_tf.wae import WAE
from wgan_tf.wgan import WGAN


def build_model(config, strategy, jit_compile=False):
    """The model for ``config``, made and compiled inside ``strategy``'s scope."""
    with strategy.scope():
        keras.utils.set_random_seed(config.seed)
        with precision.policy(config.precision):
            model = autoencoder(config) if config.autoencoder else gan(config)
        model.compile(jit_compile=jit_compile, loss_scaling=config.precision == "float16",
                      **optimizers(config))
    return model


def gan(config):
    """A ``WGAN`` (``--model wgan``) or ``GAN`` (``--model gan``), uncompiled."""
    generator, critic = models.build_pair(
        config.arch, config.image_size, config.channels, config.latent_dim, config.filters,
        critic_normalization=None if config.critic_normalization == "none"
        else config.critic_normalization,
        point_dim=data.point_dim(config.dataset),
        num_classes=len(config.class_names) if config.conditional else None,
        conditioning=config.conditioning or "projection")
    options = dict(seed=config.seed, ema_decay=config.ema, augment=config.augment,
                   lookahead=config.lookahead,
                   class_weight=config.class_weight or 0.0,
                   generated_class_weight=config.generated_class_weight or 0.0)
    if config.model == "gan":
        return GAN(generator, critic, n_critic=config.n_critic, **options)
    return WGAN(generator, critic, n_critic=config.n_critic, penalty=config.penalty,
                clip_value=config.clip_value, gp_weight=config.gp_weight,
                critic_boost=config.critic_boost, penalty_every=config.penalty_every,
                gp_target=config.gp_target, drift=config.drift, **options)


def autoencoder(config):
    """A ``WAE`` (``--model wae``) or ``VAE`` (``--model vae``), uncompiled."""
    shape = (config.image_size, config.channels, config.latent_dim, config.filters)
    encoder = autoencoder_models.encoder(*shape, gaussian=config.model == "vae")
    decoder = autoencoder_models.decoder(*shape)
    if config.model == "vae":
        return VAE(encoder, decoder, kl_weight=config.penalty_weight, seed=config.seed)
    return WAE(encoder, decoder, penalty=config.penalty, penalty_weight=config.penalty_weight,
               seed=config.seed)


def optimizers(config):
    """``compile`` keyword arguments: a fresh optimizer per player, with ``config``'s resolved
    settings (and, for auto-encoders, the official learning-rate schedule)."""
    if not config.autoencoder:
        return dict(critic_optimizer=make_optimizer(config),
                    generator_optimizer=make_optimizer(config, config.generator_learning_rate))
    result = dict(autoencoder_optimizer=make_optimizer(
        config, learning_rate_schedule(config.learning_rate, config.epoch_steps)))
    if config.model == "wae" and config.penalty == "gan":
        result["adversary_optimizer"] = make_optimizer(
            config, learning_rate_schedule(config.adversary_learning_rate, config.epoch_steps))
    return result
