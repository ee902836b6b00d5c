"""``GAN``: the WGAN paper's baseline, a standard GAN (Goodfellow et al. 2014) trained by the same
step code as ``wgan_tf.wgan.WGAN`` with the GAN's losses, so that the two are compared on the same
models, data and random numbers."""
import tensorflow as tf

from wgan_tf import losses
from wgan_tf.config import TrainConfig
from wgan_tf.wgan import WGAN


class GAN(WGAN):
    """The paper's baseline: a standard GAN (Goodfellow et al. 2014) with the -log D trick, trained
    as DCGAN is (one discriminator step per generator step, Adam(2e-4, 0.5)) by the same step code,
    so that WGAN and GAN are compared on the same models, data and random numbers. The critic's
    score is the discriminator's logit."""

    critic_loss = staticmethod(losses.gan_discriminator_loss)
    generator_loss = staticmethod(losses.gan_generator_loss)
    ESTIMATE = "js_divergence"

    @staticmethod
    def estimate(critic_loss):
        """The discriminator's estimate of JS(P_r, P_g): with an optimal discriminator its loss is
        2 log 2 - 2 JS (the curve of the paper's Fig. 4)."""
        return tf.math.log(2.0) - critic_loss / 2.0

    def __init__(self, generator, discriminator, n_critic=1, seed=TrainConfig.seed, **kwargs):
        super().__init__(generator, discriminator, n_critic=n_critic, penalty=None,
                         critic_boost=False, seed=seed, **kwargs)
