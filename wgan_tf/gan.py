"""``WGAN``: Algorithm 1 of "Wasserstein GAN" (Arjovsky, Chintala, Bottou 2017) as a ``keras.Model``.

``model.fit(dataset)`` runs one generator iteration per step: ``n_critic`` critic updates, each on a
fresh real batch and fresh prior samples, then one generator update. ``train_step`` reads like the
paper's Algorithm 1; ``penalty="gp"`` swaps weight clipping for WGAN-GP's gradient penalty.

Several replicas (``tf.distribute.MirroredStrategy``) compute the same step as one device on the same
global batch: the prior samples are drawn for the global batch from counter-based seeds and every
replica keeps its own rows, batch norm is synchronized, losses are divided by the global batch size before the optimizer's
all-reduce sums the gradients, and reported metrics are all-reduced.
"""
import keras
import tensorflow as tf

from wgan_tf import config, lipschitz, losses, rng

# Independent random streams, each indexed by its own iteration counter.
_CRITIC_LATENT, _PENALTY_MIX, _GENERATOR_LATENT = 0, 1, 2
_DEFAULTS = config.TrainConfig()


def _global_mean(per_sample):
    """This replica's share of the mean over the global batch; the shares sum to the mean."""
    ctx = tf.distribute.get_replica_context()
    global_batch = tf.cast(tf.shape(per_sample)[0] * ctx.num_replicas_in_sync, per_sample.dtype)
    return tf.reduce_sum(per_sample) / global_batch


def _all_replicas(value):
    """The sum of ``value`` over replicas (for metrics built from ``_global_mean`` shares)."""
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)


def _replica_rows(sample):
    """This replica's rows of a sample drawn for the global batch (replicas split it in order, as
    the distributed dataset splits the real batch)."""
    ctx = tf.distribute.get_replica_context()
    local_batch = tf.shape(sample)[0] // ctx.num_replicas_in_sync
    start = ctx.replica_id_in_sync_group * local_batch
    return sample[start:start + local_batch]


class WGAN(keras.Model):
    """A generator and a critic trained by Algorithm 1 (``penalty="clip"``) or WGAN-GP (``"gp"``).

    ``compile()`` with no arguments gives the paper's optimizers: RMSProp(5e-5) for both players with
    weight clipping, Adam(1e-4, 0, 0.9) with the gradient penalty.
    """

    critic_loss = staticmethod(losses.wasserstein_critic_loss)
    generator_loss = staticmethod(losses.wasserstein_generator_loss)
    ESTIMATE = "wasserstein"

    @staticmethod
    def estimate(critic_loss):
        """The critic's estimate of W(P_r, P_g) from its loss (the curve of the paper's Fig. 3)."""
        return -critic_loss

    def __init__(self, generator, critic, n_critic=_DEFAULTS.n_critic, penalty=_DEFAULTS.penalty,
                 clip_value=_DEFAULTS.clip_value, gp_weight=_DEFAULTS.gp_weight,
                 critic_boost=None, seed=_DEFAULTS.seed, **kwargs):
        super().__init__(**kwargs)
        if penalty not in ("clip", "gp", None):
            raise ValueError(f"penalty must be 'clip', 'gp' or None, got {penalty!r}")
        self.generator = generator
        self.critic = critic
        self.n_critic = int(n_critic)
        self.penalty = penalty
        self.clip_value = clip_value
        self.gp_weight = gp_weight
        self.critic_boost = penalty == "clip" if critic_boost is None else bool(critic_boost)
        self.seed = int(seed)
        self.latent_dim = generator.input_shape[-1]
        if penalty == "clip":
            lipschitz.clip_weights(critic, clip_value)
        self.generator_iterations = self._counter("generator_iterations")
        self.critic_iterations = self._counter("critic_iterations")
        self.estimate_tracker = keras.metrics.Mean(name=self.ESTIMATE)
        self.critic_loss_tracker = keras.metrics.Mean(name="critic_loss")
        self.generator_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.penalty_tracker = keras.metrics.Mean(name="gradient_penalty")

    def _counter(self, name):
        return self.add_weight(name=name, shape=(), dtype="int64", initializer="zeros",
                               trainable=False, aggregation="only_first_replica")

    def call(self, latent, training=False):
        return self.generator(latent, training=training)

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
        (lines 9-11). ``data`` is ``(real_batches, critic_noise, generator_noise)``: this replica's
        rows of ``n_critic`` real batches, and the global prior samples for each update (see
        ``critic_noise``), of which each replica uses its own rows."""
        real_batches, critic_noise, generator_noise = data
        for real, noise in zip(real_batches, critic_noise):
            self.critic_step(real, noise)
        self.generator_step(generator_noise)
        return self._logs()

    def critic_step(self, real, noise):
        """Lines 3-7: a real batch and prior samples, ascend the critic's estimate, clip."""
        fake = self.generator(_replica_rows(noise["z"]), training=True)
        with tf.GradientTape() as tape:
            per_sample = self.critic_loss(self.critic(real, training=True),
                                          self.critic(fake, training=True))
            loss = estimate_loss = _global_mean(per_sample)
            if self.penalty == "gp":
                mix = _replica_rows(noise["mix"])
                penalty = _global_mean(lipschitz.gradient_penalty(self.critic, real, fake, mix))
                loss = estimate_loss + self.gp_weight * penalty
        grads = tape.gradient(loss, self.critic.trainable_variables)
        # Weight clipping (line 7) is the variables' WeightClip constraint, applied by the optimizer.
        self.critic_optimizer.apply(grads, self.critic.trainable_variables)
        self.critic_iterations.assign_add(1)

        self.estimate_tracker.update_state(self.estimate(_all_replicas(estimate_loss)))
        self.critic_loss_tracker.update_state(_all_replicas(loss))
        if self.penalty == "gp":
            self.penalty_tracker.update_state(_all_replicas(penalty))

    def generator_step(self, noise):
        """Lines 9-10: prior samples, descend -f(G(z))."""
        with tf.GradientTape() as tape:
            fake = self.generator(_replica_rows(noise["z"]), training=True)
            loss = _global_mean(self.generator_loss(self.critic(fake, training=True)))
        grads = tape.gradient(loss, self.generator.trainable_variables)
        self.generator_optimizer.apply(grads, self.generator.trainable_variables)
        self.generator_iterations.assign_add(1)
        self.generator_loss_tracker.update_state(_all_replicas(loss))

    def _logs(self):
        logs = {m.name: m.result() for m in self.metrics}
        logs["generator_iteration"] = self.generator_iterations.value
        logs["critic_iteration"] = self.critic_iterations.value
        return logs

    # -- Prior samples: the same global draws whatever the replica count, with or without XLA ------

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

    # -- Driving train_step from fit ---------------------------------------------------------------

    def boost_iterations(self):
        """Extra critic iterations before the next generator iteration (the reference code's boost)."""
        g = int(self.generator_iterations.numpy())
        return config.critic_iterations(g, self.n_critic, self.critic_boost) - self.n_critic

    def _jit_per_replica(self):
        """XLA for the per-replica step where it can run: on one device, or on GPUs only. On CPU
        devices MirroredStrategy would compile the cross-device function and fail."""
        if not self.jit_compile:
            return False
        strategy = self.distribute_strategy
        return strategy.num_replicas_in_sync == 1 or all(
            "GPU" in d.upper() for d in strategy.extended.worker_devices)

    def make_train_function(self, force=False):
        """Keras's train function runs ``train_step`` on one batch. Algorithm 1 needs ``n_critic``
        batches per step, plus the critic boost's extra critic-only iterations before some steps.
        Under MirroredStrategy a gradient all-reduce cannot sit inside graph control flow (merge_call
        in a while loop), so the number of boost iterations is chosen here in Python."""
        if self.train_function is not None and not force:
            return self.train_function
        strategy = self.distribute_strategy
        jit = self._jit_per_replica()
        train_step = tf.function(self.train_step, jit_compile=jit)
        critic_step = tf.function(self.critic_step, jit_compile=jit)

        def next_real(iterator):
            real, _, _ = keras.utils.unpack_x_y_sample_weight(iterator.get_next())
            return real

        def global_batch(real):
            return sum(tf.shape(r)[0] for r in strategy.experimental_local_results(real))

        # Prior samples are drawn here, outside the per-replica step, because XLA's Philox gives
        # other numbers than the CPU/GPU kernels; every replica receives the global draws.
        @tf.function
        def generator_iteration(iterator):
            reals = tuple(next_real(iterator) for _ in range(self.n_critic))
            batch = global_batch(reals[0])
            first = self.critic_iterations.value
            critic_noise = tuple(self.critic_noise(batch, first + i) for i in range(self.n_critic))
            generator_noise = self.generator_noise(batch, self.generator_iterations.value)
            logs = strategy.run(train_step, args=((reals, critic_noise, generator_noise),))
            # Metrics are all-reduced inside the step: every replica holds the global values.
            return strategy.experimental_local_results(logs)[0]

        @tf.function
        def boost_iteration(iterator):
            real = next_real(iterator)
            noise = self.critic_noise(global_batch(real), self.critic_iterations.value)
            strategy.run(critic_step, args=(real, noise))

        def function(iterator):
            for _ in range(self.boost_iterations()):
                boost_iteration(iterator)
            return generator_iteration(iterator)

        self.train_function = function
        return function

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a strategy, Keras builds an unbuilt model by pulling one batch off the training
        # iterator, and that batch would be lost to Algorithm 1's data stream (and to an exact
        # resume). Both players are built when they are constructed, so there is nothing to build.
        pass


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

    def __init__(self, generator, discriminator, n_critic=1, seed=_DEFAULTS.seed, **kwargs):
        super().__init__(generator, discriminator, n_critic=n_critic, penalty=None,
                         critic_boost=False, seed=seed, **kwargs)
