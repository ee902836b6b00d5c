"""``AutoEncoder``: what the auto-encoder families (``WAE``, ``VAE``) share on ``GenerativeModel``.

An encoder Q maps images to codes, a decoder G maps codes back to images; the decoder is the
sampler (latents from the prior N(0, I) -> images), exported and plotted as a GAN's generator is.
One ``fit`` step is one encoder/decoder update on one batch (what ``--steps`` counts, the
``iteration`` column of metrics.csv). The objective is the reconstruction cost (squared L2 times
0.05, ``wgan_tf.losses.reconstruction_cost``) plus ``penalty_weight`` times the family's latent
penalty. Every random number of a step (prior samples, encoder-input noise, the VAE's epsilon) is
drawn for the global batch by ``draw_noise``, outside the per-replica step, from counter-based
streams (``wgan_tf.rng``) indexed by the iteration counter, so runs resume exactly and one or
several replicas compute the same step.
"""
import keras

from wgan_tf import config, losses, rng
from wgan_tf.generative import GenerativeModel
from wgan_tf.replicas import global_mean, sum_over_replicas

# Random streams of an auto-encoder (a model's streams are its own: WGAN's numbers do not matter
# here). Stream 3 is the sample grids' (wgan_tf.callbacks).
PRIOR, ENCODER_NOISE, EPSILON = 0, 1, 2


class AutoEncoder(GenerativeModel):
    """The shared part of an encoder/decoder family; a subclass defines ``train_step`` and the
    ``metrics`` it reports."""

    STEP_NAME = "iteration"

    def __init__(self, encoder, decoder, penalty_weight, seed=0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.penalty_weight = float(penalty_weight)
        self.train_iterations = self._counter("iterations")
        self.objective_tracker = keras.metrics.Mean(name="objective")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_cost")

    step_counter = property(lambda self: self.train_iterations)
    sampler = property(lambda self: self.decoder)

    @property
    def image_shape(self):
        return tuple(self.encoder.input_shape[1:])

    def networks(self):
        return {"encoder": self.encoder, "decoder": self.decoder}

    def optimizers(self):
        return {"autoencoder_optimizer": self.autoencoder_optimizer}

    def counter_logs(self):
        return {"iteration": self.train_iterations}

    def compile(self, autoencoder_optimizer=None, epoch_steps=0, **kwargs):
        """``autoencoder_optimizer`` trains the encoder and decoder; None gives the official one,
        Adam(1e-3, beta1 0.5), with the official schedule when ``epoch_steps`` is given."""
        super().compile(**kwargs)
        self.autoencoder_optimizer = autoencoder_optimizer or keras.optimizers.Adam(
            config.learning_rate_schedule(config.WAE_ADAM["learning_rate"], epoch_steps),
            **{k: v for k, v in config.WAE_ADAM.items() if k != "learning_rate"})
        self.prepare_optimizer("autoencoder_optimizer", self.autoencoder_variables)

    @property
    def autoencoder_variables(self):
        return self.encoder.trainable_variables + self.decoder.trainable_variables

    # -- Using a trained model ---------------------------------------------------------------------

    def encode(self, images, training=False):
        """Codes of ``images`` (the VAE's: the posterior mean)."""
        return self.encoder(images, training=training)

    def reconstruct(self, images, training=False):
        return self.decoder(self.encode(images, training=training), training=training)

    # -- Pieces of a step --------------------------------------------------------------------------

    def reconstruction_cost(self, real, reconstructed):
        """This replica's share of the batch's mean reconstruction cost."""
        return global_mean(losses.reconstruction_cost(real, reconstructed))

    def objective(self, cost, penalty):
        """cost + lambda * penalty (this replica's shares of both)."""
        return cost + self.penalty_weight * penalty

    def update_autoencoder(self, tape, objective, cost):
        """Descend the objective (computed under ``tape``) over the encoder and decoder; report
        the global values. Returns ``minimize``'s answer."""
        made = self.minimize("autoencoder_optimizer", tape, objective, self.autoencoder_variables)
        self.record(self.objective_tracker, sum_over_replicas(objective), made)
        self.record(self.reconstruction_tracker, sum_over_replicas(cost), made)
        return made

    def prior(self, global_batch, stream=PRIOR):
        return rng.normal([global_batch, self.latent_dim], self.seed, stream,
                          self.train_iterations.value)

