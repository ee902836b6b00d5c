"""``WGAN``: Algorithm 1 of "Wasserstein GAN" (Arjovsky, Chintala, Bottou 2017) as a ``keras.Model``.

``model.fit(dataset)`` runs one generator iteration per step: ``n_critic`` critic updates, each on a
fresh real batch and fresh prior samples, then one generator update. ``train_step`` reads like the
paper's Algorithm 1; ``penalty="gp"`` swaps weight clipping for WGAN-GP's gradient penalty.

Several replicas (``tf.distribute`` strategies) compute the same step as one device on the same
global batch (``wgan_tf.replicas``): the prior samples are drawn for the global batch from
counter-based seeds and every replica keeps its own rows, batch norm is synchronized, losses are
divided by the global batch size before the optimizer's all-reduce sums the gradients, and reported
metrics are all-reduced.
"""
import keras
import tensorflow as tf

from wgan_tf import config, lipschitz, losses, rng
from wgan_tf.generative import GenerativeModel, TrainingInterrupted
from wgan_tf.replicas import global_mean, replica_rows, sum_over_replicas

# Independent random streams, each indexed by its own iteration counter.
_CRITIC_LATENT, _PENALTY_MIX, _GENERATOR_LATENT = 0, 1, 2
_DEFAULTS = config.TrainConfig()


class WGAN(GenerativeModel):
    """A generator and a critic trained by Algorithm 1 (``penalty="clip"``) or WGAN-GP (``"gp"``).

    ``compile()`` with no arguments gives the paper's optimizers: RMSProp(5e-5) for both players with
    weight clipping, Adam(1e-4, 0, 0.9) with the gradient penalty.
    """

    critic_loss = staticmethod(losses.wasserstein_critic_loss)
    generator_loss = staticmethod(losses.wasserstein_generator_loss)
    ESTIMATE = "wasserstein"
    STEP_NAME = "generator iteration"

    @staticmethod
    def estimate(critic_loss):
        """The critic's estimate of W(P_r, P_g) from its loss (the curve of the paper's Fig. 3)."""
        return -critic_loss

    def __init__(self, generator, critic, n_critic=_DEFAULTS.n_critic, penalty=_DEFAULTS.penalty,
                 clip_value=_DEFAULTS.clip_value, gp_weight=_DEFAULTS.gp_weight,
                 critic_boost=None, seed=_DEFAULTS.seed, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if penalty not in ("clip", "gp", None):
            raise ValueError(f"penalty must be 'clip', 'gp' or None, got {penalty!r}")
        self.generator = generator
        self.critic = critic
        self.n_critic = int(n_critic)
        self.penalty = penalty
        self.clip_value = clip_value
        self.gp_weight = gp_weight
        self.critic_boost = penalty == "clip" if critic_boost is None else bool(critic_boost)
        if penalty == "clip":
            lipschitz.clip_weights(critic, clip_value)
        self.generator_iterations = self._counter("generator_iterations")
        self.critic_iterations = self._counter("critic_iterations")
        self.estimate_tracker = keras.metrics.Mean(name=self.ESTIMATE)
        self.critic_loss_tracker = keras.metrics.Mean(name="critic_loss")
        self.generator_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.penalty_tracker = keras.metrics.Mean(name="gradient_penalty")

    # -- What the run directory, checkpoints and export see ----------------------------------------

    batches_per_step = property(lambda self: self.n_critic)
    step_counter = property(lambda self: self.generator_iterations)
    batch_counter = property(lambda self: self.critic_iterations)
    sampler = property(lambda self: self.generator)

    def networks(self):
        return {"generator": self.generator, "critic": self.critic}

    def optimizers(self):
        return {"critic_optimizer": self.critic_optimizer,
                "generator_optimizer": self.generator_optimizer}

    def counter_logs(self):
        return {"generator_iteration": self.generator_iterations,
                "critic_iteration": self.critic_iterations}

    def compile(self, critic_optimizer=None, generator_optimizer=None, **kwargs):
        super().compile(**kwargs)
        self.critic_optimizer = critic_optimizer or self._paper_optimizer()
        self.generator_optimizer = generator_optimizer or self._paper_optimizer()
        # Built here, inside the strategy scope the model was made in: a Keras 3 optimizer first
        # built inside a distributed train_step fails under MirroredStrategy.
        self.critic_optimizer.build(self.critic.trainable_variables)
        self.generator_optimizer.build(self.generator.trainable_variables)

    def _paper_optimizer(self):
        if self.penalty is None:
            return keras.optimizers.Adam(**config.DCGAN_ADAM)
        if self.penalty == "gp":
            return keras.optimizers.Adam(**config.GP_ADAM)
        return keras.optimizers.RMSprop(**config.PAPER_RMSPROP)

    @property
    def metrics(self):
        trackers = [self.estimate_tracker, self.critic_loss_tracker, self.generator_loss_tracker]
        return trackers + ([self.penalty_tracker] if self.penalty == "gp" else [])

    # -- Algorithm 1 -------------------------------------------------------------------------------

    def train_step(self, data):
        """One generator iteration: ``n_critic`` critic updates (lines 2-8), one generator update
        (lines 9-11). ``data`` is ``(real_batches, noise)``: this replica's rows of ``n_critic`` real
        batches, and the global prior samples for each update (``draw_noise``), of which each
        replica uses its own rows."""
        real_batches, noise = data
        for real, critic_noise in zip(real_batches, noise["critic"]):
            self.critic_step(real, critic_noise)
        self.generator_step(noise["generator"])
        return self._logs()

    def critic_step(self, real, noise):
        """Lines 3-7: a real batch and prior samples, ascend the critic's estimate, clip."""
        fake = self.generator(replica_rows(noise["z"]), training=True)
        with tf.GradientTape() as tape:
            per_sample = self.critic_loss(self.critic(real, training=True),
                                          self.critic(fake, training=True))
            loss = estimate_loss = global_mean(per_sample)
            if self.penalty == "gp":
                mix = replica_rows(noise["mix"])
                penalty = global_mean(lipschitz.gradient_penalty(self.critic, real, fake, mix))
                loss = estimate_loss + self.gp_weight * penalty
        grads = tape.gradient(loss, self.critic.trainable_variables)
        # Weight clipping (line 7) is the variables' WeightClip constraint, applied by the optimizer.
        self.critic_optimizer.apply(grads, self.critic.trainable_variables)
        self.critic_iterations.assign_add(1)

        self.estimate_tracker.update_state(self.estimate(sum_over_replicas(estimate_loss)))
        self.critic_loss_tracker.update_state(sum_over_replicas(loss))
        if self.penalty == "gp":
            self.penalty_tracker.update_state(sum_over_replicas(penalty))

    def generator_step(self, noise):
        """Lines 9-10: prior samples, descend -f(G(z))."""
        with tf.GradientTape() as tape:
            fake = self.generator(replica_rows(noise["z"]), training=True)
            loss = global_mean(self.generator_loss(self.critic(fake, training=True)))
        grads = tape.gradient(loss, self.generator.trainable_variables)
        self.generator_optimizer.apply(grads, self.generator.trainable_variables)
        self.generator_iterations.assign_add(1)
        self.generator_loss_tracker.update_state(sum_over_replicas(loss))

    # -- Prior samples: the same global draws whatever the replica count, with or without XLA ------

    def draw_noise(self, global_batch):
        """Prior samples for the next generator iteration: one set per critic iteration (indexed by
        the critic counter) and one for the generator update."""
        first = self.critic_iterations.value
        return {"critic": tuple(self.critic_noise(global_batch, first + i)
                                for i in range(self.n_critic)),
                "generator": self.generator_noise(global_batch, self.generator_iterations.value)}

    def critic_noise(self, global_batch, iteration):
        """Prior samples for critic iteration ``iteration``: z, and WGAN-GP's mixing factors."""
        noise = {"z": rng.normal([global_batch, self.latent_dim], self.seed, _CRITIC_LATENT,
                                 iteration)}
        if self.penalty == "gp":
            noise["mix"] = rng.uniform([global_batch], self.seed, _PENALTY_MIX, iteration)
        return noise

    def generator_noise(self, global_batch, iteration):
        return {"z": rng.normal([global_batch, self.latent_dim], self.seed, _GENERATOR_LATENT,
                                iteration)}

    # -- The critic boost, run from Python before some generator iterations ------------------------

    def boost_iterations(self):
        """Critic-only iterations still due before the next generator iteration: the reference
        code's boost, counted from the critic counter so that a run stopped halfway through a boost
        finishes exactly the rest of it when resumed."""
        g = int(self.generator_iterations.numpy())
        due = (config.critic_iterations_before(g, self.n_critic, self.critic_boost)
               + config.critic_iterations(g, self.n_critic, self.critic_boost) - self.n_critic)
        return max(due - int(self.critic_iterations.numpy()), 0)

    def before_step(self, iterator):
        if not self.critic_boost:
            return
        if getattr(self, "_boost_function", None) is None:
            critic_step = tf.function(self.critic_step, jit_compile=self._jit_per_replica())
            run = self.distributed(critic_step)

            @tf.function
            def boost_iteration(iterator):
                real = self.next_batch(iterator)
                run(real, self.critic_noise(self.global_batch_size(real),
                                            self.critic_iterations.value))
            self._boost_function = boost_iteration
        for _ in range(self.boost_iterations()):
            if self.interrupt_requested():
                raise TrainingInterrupted("stopped during the critic boost")
            self._boost_function(iterator)

    def make_train_function(self, force=False):
        if force:
            self._boost_function = None
        return super().make_train_function(force)

