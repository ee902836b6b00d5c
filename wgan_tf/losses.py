"""Losses as pure functions of critic scores, one value per sample.

Per-sample values let the training step average over the *global* batch (summing on each replica and
dividing by the global batch size), which is what makes several replicas compute the same step as one.
"""
import tensorflow as tf


def wasserstein_critic_loss(real_scores, fake_scores):
    """WGAN critic loss, f(fake) - f(real) per sample (Arjovsky et al. 2017, Algorithm 1 line 5, negated
    because optimizers minimise). Its negative mean is the critic's estimate of W(P_r, P_g), up to the
    Lipschitz constant."""
    return tf.reshape(fake_scores - real_scores, [-1])


def wasserstein_generator_loss(fake_scores):
    """WGAN generator loss, -f(G(z)) per sample (Algorithm 1 line 10)."""
    return -tf.reshape(fake_scores, [-1])


def gan_discriminator_loss(real_logits, fake_logits):
    """Standard GAN discriminator loss per sample, -log D(x) - log(1 - D(G(z))) with D = sigmoid of
    the logit (Goodfellow et al. 2014), in the numerically stable softplus form."""
    return tf.reshape(tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits), [-1])


def gan_generator_loss(fake_logits):
    """The -log D(G(z)) generator loss per sample (Goodfellow et al. 2014's non-saturating trick,
    the WGAN paper's baseline)."""
    return tf.reshape(tf.nn.softplus(-fake_logits), [-1])
