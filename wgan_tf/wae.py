"""``WAE``: the Wasserstein auto-encoder (Tolstikhin, Bousquet, Gelly, Schoelkopf, ICLR 2018) as a
``keras.Model``, WAE-MMD (Algorithm 2) and WAE-GAN (Algorithm 1), as the official code trains them
(tolstikhin/wae, wae.py).

A deterministic encoder Q and a decoder G minimise the optimal-transport cost between the data and
G(P_Z) through the objective  E c(x, G(Q(x))) + lambda * D(Q_Z, P_Z):  the reconstruction cost
plus a penalty that pulls the aggregate posterior Q_Z (the codes of a batch) to the prior
P_Z = N(0, I). The official code adds N(0, 0.01^2) noise to the encoder's input images while
training (``e_noise='add_noise'``; it draws a normal truncated at two standard deviations, here an
untruncated one, which differs at 0.01 scale in 5% of the pixels).

- WAE-MMD: D is the unbiased MMD estimate with the IMQ kernel (``wgan_tf.losses.imq_mmd``), a
  statistic over all pairs of the *global* batch: every replica gathers the codes of all replicas
  (``gather_rows``) and takes its share (``replica_share``) of the one value.
- WAE-GAN: D is the non-saturating GAN loss of a latent adversary, -log D(Q(x)); after each
  encoder/decoder update, one adversary update on the same batch and prior sample ascends
  lambda * [log D(z) + log(1 - D(Q(x)))] (official: ``loss_adversary`` scaled by lambda), with the
  codes of the updated encoder in training mode, as the official second ``sess.run`` computes them.
"""
import keras
import tensorflow as tf

from wgan_tf import autoencoder_models, config, losses, rng
from wgan_tf.autoencoder import ENCODER_NOISE, AutoEncoder
from wgan_tf.replicas import (gather_rows, global_mean, replica_rows, replica_share,
                              sum_over_replicas)

PENALTIES = config.PENALTIES["wae"]
# The official encoder-input noise (models.py, ``add_noise``: standard deviation 0.01).
ENCODER_NOISE_STD = 0.01


class WAE(AutoEncoder):
    """An encoder and a decoder trained by WAE-MMD (``penalty="mmd"``) or WAE-GAN (``"gan"``).

    ``compile()`` with no arguments gives the official optimizers: Adam(1e-3, beta1 0.5) for the
    encoder and decoder and Adam(5e-4, beta1 0.5) for WAE-GAN's adversary, with the official
    learning-rate schedule when ``epoch_steps`` (steps per epoch) is given.
    """

    def __init__(self, encoder, decoder, penalty="mmd", penalty_weight=config.WAE_LAMBDA,
                 adversary=None, seed=0, **kwargs):
        super().__init__(encoder, decoder, penalty_weight, seed=seed, **kwargs)
        if penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {PENALTIES}, got {penalty!r}")
        self.penalty = penalty
        self.adversary = None
        if penalty == "gan":
            self.adversary = adversary or autoencoder_models.latent_adversary(
                encoder.output_shape[-1])
            self.adversary_tracker = keras.metrics.Mean(name="adversary_loss")
        self.penalty_tracker = keras.metrics.Mean(name="mmd" if penalty == "mmd" else "gan_penalty")

    def networks(self):
        return {**super().networks(), **({"adversary": self.adversary} if self.adversary else {})}

    def optimizers(self):
        extra = {"adversary_optimizer": self.adversary_optimizer} if self.adversary else {}
        return {**super().optimizers(), **extra}

    def compile(self, autoencoder_optimizer=None, adversary_optimizer=None, epoch_steps=0,
                **kwargs):
        super().compile(autoencoder_optimizer, epoch_steps, **kwargs)
        if self.adversary:
            self.adversary_optimizer = adversary_optimizer or keras.optimizers.Adam(
                config.learning_rate_schedule(config.WAE_ADVERSARY_LEARNING_RATE, epoch_steps),
                **{k: v for k, v in config.WAE_ADAM.items() if k != "learning_rate"})
            self.prepare_optimizer("adversary_optimizer", self.adversary.trainable_variables)

    @property
    def metrics(self):
        trackers = [self.objective_tracker, self.reconstruction_tracker, self.penalty_tracker]
        return trackers + ([self.adversary_tracker] if self.adversary else [])

    # -- The algorithm -----------------------------------------------------------------------------

    def train_step(self, data):
        """One iteration on a batch: ``data`` is ``((real,), noise)``, this replica's rows of the
        real batch and the global random numbers of ``draw_noise``."""
        (real,), noise = data
        noisy = real + replica_rows(noise["encoder_noise"])
        prior = noise["prior"]
        self.autoencoder_step(real, noisy, prior)
        if self.adversary:
            self.adversary_step(noisy, prior)
        self.train_iterations.assign_add(1)
        return self._logs()

    def autoencoder_step(self, real, noisy, prior):
        """Descend c(x, G(Q(x))) + lambda * D(Q_Z, P_Z) over the encoder and decoder."""
        with tf.GradientTape() as tape:
            codes = self.encoder(noisy, training=True)
            cost = self.reconstruction_cost(real, self.decoder(codes, training=True))
            penalty = self.matching_penalty(codes, prior)
            objective = self.objective(cost, penalty)
        made = self.update_autoencoder(tape, objective, cost)
        self.record(self.penalty_tracker, sum_over_replicas(penalty), made)

    def matching_penalty(self, codes, prior):
        """This replica's share of D(Q_Z, P_Z) (``prior`` is the global sample)."""
        if self.penalty == "mmd":
            return replica_share(losses.imq_mmd(gather_rows(codes), prior))
        return global_mean(losses.gan_generator_loss(self.adversary(codes, training=True)))

    def adversary_step(self, noisy, prior):
        """Descend lambda * [-log D(z) - log(1 - D(Q(x)))] over the adversary."""
        codes = self.encoder(noisy, training=True)
        with tf.GradientTape() as tape:
            loss = self.penalty_weight * global_mean(losses.gan_discriminator_loss(
                self.adversary(replica_rows(prior), training=True),
                self.adversary(codes, training=True)))
        made = self.minimize("adversary_optimizer", tape, loss, self.adversary.trainable_variables)
        self.record(self.adversary_tracker, sum_over_replicas(loss), made)

    def draw_noise(self, global_batch):
        """The step's prior sample and encoder-input noise, for the global batch."""
        return {"prior": self.prior(global_batch),
                "encoder_noise": ENCODER_NOISE_STD * rng.normal(
                    [global_batch, *self.image_shape], self.seed, ENCODER_NOISE,
                    self.train_iterations.value)}
