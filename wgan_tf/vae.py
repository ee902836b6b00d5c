"""``VAE``: the variational auto-encoder (Kingma and Welling 2014), the WAE paper's baseline, on the
same networks and reconstruction cost as ``WAE``, so that the comparison isolates the penalty.

The encoder is Gaussian: it gives the mean and the log variance of Q(Z|X) (the official WAE code's
``e_noise='gaussian'`` heads, with their clipping of the log variance to [-50, 50] and
z = mean + eps * sqrt(1e-8 + variance)); a code is drawn with the reparameterisation trick, and
the penalty is KL(Q(Z|x) || N(0, I)) per sample, averaged over the batch, with weight
``kl_weight`` (1: the ELBO with a Gaussian decoder whose variance the 0.05 cost fixes).
"""
import keras
import tensorflow as tf

from wgan_tf import config, losses, rng
from wgan_tf.autoencoder import EPSILON, AutoEncoder
from wgan_tf.replicas import global_mean, replica_rows, sum_over_replicas

LOG_VARIANCE_CLIP = 50.0


class VAE(AutoEncoder):
    """A Gaussian encoder (outputs ``[mean, log_variance]``) and a decoder trained on the negative
    ELBO: reconstruction cost + ``kl_weight`` * KL. ``compile()`` with no arguments gives the WAE's
    Adam(1e-3, beta1 0.5)."""

    def __init__(self, encoder, decoder, kl_weight=config.VAE_KL_WEIGHT, seed=0, **kwargs):
        super().__init__(encoder, decoder, kl_weight, seed=seed, **kwargs)
        if len(encoder.outputs) != 2:
            raise ValueError("a VAE's encoder gives [mean, log_variance] "
                             "(wgan_tf.autoencoder_models.encoder(..., gaussian=True))")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    @property
    def metrics(self):
        return [self.objective_tracker, self.reconstruction_tracker, self.kl_tracker]

    def posterior(self, images, training=False):
        mean, log_variance = self.encoder(images, training=training)
        return mean, tf.clip_by_value(log_variance, -LOG_VARIANCE_CLIP, LOG_VARIANCE_CLIP)

    def encode(self, images, training=False):
        """The posterior mean: the code a reconstruction and the exported ``encode`` use."""
        return self.posterior(images, training)[0]

    def train_step(self, data):
        """One step of the negative ELBO on a batch (``data`` as ``WAE.train_step``'s)."""
        (real,), noise = data
        epsilon = replica_rows(noise["epsilon"])
        with tf.GradientTape() as tape:
            mean, log_variance = self.posterior(real, training=True)
            codes = mean + epsilon * tf.sqrt(1e-8 + tf.exp(log_variance))
            cost = self.reconstruction_cost(real, self.decoder(codes, training=True))
            kl = global_mean(losses.gaussian_kl(mean, log_variance))
            objective = self.objective(cost, kl)
        made = self.update_autoencoder(tape, objective, cost)
        self.record(self.kl_tracker, sum_over_replicas(kl), made)
        self.train_iterations.assign_add(1)
        return self._logs()

    def draw_noise(self, global_batch):
        return {"epsilon": rng.normal([global_batch, self.latent_dim], self.seed, EPSILON,
                                      self.train_iterations.value)}
