"""``WGAN``: Algorithm 1 of "Wasserstein GAN" (Arjovsky, Chintala, Bottou 2017) as a ``keras.Model``.

``model.fit(dataset)`` runs one generator iteration per step: ``n_critic`` critic updates, each on a
fresh real batch and fresh prior samples, then one generator update. ``train_step`` reads like the
paper's Algorithm 1; ``penalty="gp"`` swaps weight clipping for WGAN-GP's gradient penalty.

Two additions that users of GAN libraries expect on their own photos, both off by default (the
paper has neither): ``ema=DECAY`` keeps an exponential moving average of the generator
(``wgan_tf.ema``), which is then the model's sampler (sampled, evaluated, exported); and
``augment="color,translation,cutout"`` applies DiffAugment (``wgan_tf.augment``) to every image
the critic sees, real or generated, in both players' updates.

The WGAN-GP paper's conditional model: given a conditional generator (``[latent, labels] ->
images``) and a critic with an auxiliary classifier (``images -> [score, class logits]``,
``wgan_tf.models``), the real batches are (images, labels); the critic also descends the
classifier's cross-entropy on the real labels (weight 1), the generator also descends it on its
own samples of the classes asked for (weight 0.1), as the paper's code (AC-GAN, Odena et al.
2017). The critic's generated images have the real batch's labels; the generator's update asks
for uniformly drawn ones.

Mixed precision needs nothing here
but ``compile(loss_scaling=True)`` for float16 networks, whose loss scale then scales every
gradient, the penalty's inner one included (``wgan_tf.precision``).

Several replicas (``tf.distribute`` strategies) compute the same step as one device on the same
global batch (``wgan_tf.replicas``): the prior samples are drawn for the global batch from
counter-based seeds and every replica keeps its own rows, batch norm is synchronized, losses are
divided by the global batch size before the optimizer's all-reduce sums the gradients, and reported
metrics are all-reduced.
"""
import keras
import tensorflow as tf

from wgan_tf import augment as diffaugment
from wgan_tf import config, ema, lipschitz, losses, rng
from wgan_tf.generative import GenerativeModel, TrainingInterrupted
from wgan_tf.models import is_conditional
from wgan_tf.replicas import global_mean, replica_rows, sum_over_replicas

# Independent random streams, each indexed by its own iteration counter, and lanes within them.
_CRITIC_LATENT, _PENALTY_MIX, _GENERATOR_LATENT = 0, 1, 2
_AUGMENT_REAL, _AUGMENT_FAKE, _LABELS = 1, 2, 3
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
                 critic_boost=None, seed=_DEFAULTS.seed, ema_decay=None, augment=None,
                 class_weight=config.CLASS_WEIGHT_CRITIC,
                 generated_class_weight=config.CLASS_WEIGHT_GENERATOR, **kwargs):
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
        self.ema_decay = float(ema_decay) if ema_decay else None
        self.generator_ema = ema.average_network(generator) if self.ema_decay else None
        self.augment_policies = diffaugment.parse(augment)
        self.num_classes = _classes(generator, critic)
        self.class_weight = float(class_weight)
        self.generated_class_weight = float(generated_class_weight)
        self.generator_iterations = self._counter("generator_iterations")
        self.critic_iterations = self._counter("critic_iterations")
        self.estimate_tracker = keras.metrics.Mean(name=self.ESTIMATE)
        self.critic_loss_tracker = keras.metrics.Mean(name="critic_loss")
        self.generator_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.penalty_tracker = keras.metrics.Mean(name="gradient_penalty")
        self.class_loss_tracker = keras.metrics.Mean(name="class_loss")
        self.generated_class_loss_tracker = keras.metrics.Mean(name="generated_class_loss")

    # -- What the run directory, checkpoints and export see ----------------------------------------

    batches_per_step = property(lambda self: self.n_critic)
    step_counter = property(lambda self: self.generator_iterations)
    batch_counter = property(lambda self: self.critic_iterations)
    # What is sampled, evaluated and exported: the generator's EMA where there is one.
    sampler = property(lambda self: self.generator_ema or self.generator)

    def networks(self):
        averaged = {"generator_ema": self.generator_ema} if self.generator_ema else {}
        return {"generator": self.generator, "critic": self.critic, **averaged}

    def optimizers(self):
        return {"critic_optimizer": self.critic_optimizer,
                "generator_optimizer": self.generator_optimizer}

    def counter_logs(self):
        return {"generator_iteration": self.generator_iterations,
                "critic_iteration": self.critic_iterations}

    def compile(self, critic_optimizer=None, generator_optimizer=None, **kwargs):
        """No arguments: the paper's optimizers. ``loss_scaling=True`` trains float16 networks
        with dynamic loss scaling (``wgan_tf.precision``)."""
        super().compile(**kwargs)
        self.critic_optimizer = critic_optimizer or self._paper_optimizer()
        self.generator_optimizer = generator_optimizer or self._paper_optimizer()
        self.prepare_optimizer("critic_optimizer", self.critic.trainable_variables)
        self.prepare_optimizer("generator_optimizer", self.generator.trainable_variables)

    def _paper_optimizer(self):
        if self.penalty is None:
            return keras.optimizers.Adam(**config.DCGAN_ADAM)
        if self.penalty == "gp":
            return keras.optimizers.Adam(**config.GP_ADAM)
        return keras.optimizers.RMSprop(**config.PAPER_RMSPROP)

    @property
    def metrics(self):
        trackers = [self.estimate_tracker, self.critic_loss_tracker, self.generator_loss_tracker]
        if self.penalty == "gp":
            trackers.append(self.penalty_tracker)
        if self.num_classes:
            trackers += [self.class_loss_tracker, self.generated_class_loss_tracker]
        return trackers

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
        real, labels = real if self.num_classes else (real, None)
        fake = self.generate(replica_rows(noise["z"]), labels)
        real = self.augment(real, noise.get("augment_real"))
        fake = self.augment(fake, noise.get("augment_fake"))
        with tf.GradientTape() as tape:
            real_scores, real_logits = self.critique(real)
            per_sample = self.critic_loss(real_scores, self.critique(fake)[0])
            loss = estimate_loss = global_mean(per_sample)
            if self.penalty == "gp":
                mix = replica_rows(noise["mix"])
                penalty = global_mean(lipschitz.gradient_penalty(
                    lambda x, training: self.critique(x, training)[0], real, fake, mix,
                    loss_scale=self.loss_scale("critic_optimizer")))
                loss = estimate_loss + self.gp_weight * penalty
            if self.num_classes:
                class_loss = global_mean(losses.class_cross_entropy(real_logits, labels))
                loss += self.class_weight * class_loss
        # Weight clipping (line 7) is the variables' WeightClip constraint, applied by the optimizer.
        made = self.minimize("critic_optimizer", tape, loss, self.critic.trainable_variables)
        self.critic_iterations.assign_add(1)

        self.record(self.estimate_tracker, self.estimate(sum_over_replicas(estimate_loss)), made)
        self.record(self.critic_loss_tracker, sum_over_replicas(loss), made)
        if self.penalty == "gp":
            self.record(self.penalty_tracker, sum_over_replicas(penalty), made)
        if self.num_classes:
            self.record(self.class_loss_tracker, sum_over_replicas(class_loss), made)

    def generator_step(self, noise):
        """Lines 9-10: prior samples, descend -f(G(z)) (and, conditional, the classifier's
        cross-entropy of the classes asked for)."""
        labels = replica_rows(noise["labels"]) if self.num_classes else None
        with tf.GradientTape() as tape:
            fake = self.generate(replica_rows(noise["z"]), labels)
            scores, logits = self.critique(self.augment(fake, noise.get("augment_fake")))
            loss = global_mean(self.generator_loss(scores))
            if self.num_classes:
                class_loss = global_mean(losses.class_cross_entropy(logits, labels))
                loss += self.generated_class_weight * class_loss
        made = self.minimize("generator_optimizer", tape, loss, self.generator.trainable_variables)
        self.generator_iterations.assign_add(1)
        self.record(self.generator_loss_tracker, sum_over_replicas(loss), made)
        if self.num_classes:
            self.record(self.generated_class_loss_tracker, sum_over_replicas(class_loss), made)

    def generate(self, latent, labels=None, training=True):
        """The generator's images of ``latent`` (and ``labels``, for a conditional one)."""
        return self.generator(latent if labels is None else [latent, labels], training=training)

    def critique(self, images, training=True):
        """(scores ``[B, 1]``, class logits ``[B, classes]`` or None) of the critic."""
        outputs = self.critic(images, training=training)
        return tuple(outputs) if self.num_classes else (outputs, None)

    def augment(self, images, numbers):
        """DiffAugment of this replica's images with its rows of the global batch's numbers."""
        if not self.augment_policies:
            return images
        return diffaugment.augment(images, replica_rows(numbers), self.augment_policies)

    def after_step(self):
        if self.generator_ema is not None:
            ema.update(self.generator_ema, self.generator, self.ema_decay,
                       self.generator_iterations.value)

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
        if self.augment_policies:
            for name, lane in (("augment_real", _AUGMENT_REAL), ("augment_fake", _AUGMENT_FAKE)):
                noise[name] = diffaugment.draw(global_batch, self.seed, _CRITIC_LATENT, iteration,
                                               lane)
        return noise

    def generator_noise(self, global_batch, iteration):
        noise = {"z": rng.normal([global_batch, self.latent_dim], self.seed, _GENERATOR_LATENT,
                                 iteration)}
        if self.num_classes:
            noise["labels"] = uniform_labels(global_batch, self.num_classes, self.seed,
                                             _GENERATOR_LATENT, iteration, _LABELS)
        if self.augment_policies:
            noise["augment_fake"] = diffaugment.draw(global_batch, self.seed, _GENERATOR_LATENT,
                                                     iteration, _AUGMENT_FAKE)
        return noise

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


def uniform_labels(count, num_classes, seed, stream, counter, lane):
    """``count`` class labels drawn uniformly (int32), a pure function of the counters."""
    u = rng.uniform([count], seed, stream, counter, lane)
    return tf.minimum(tf.cast(tf.floor(u * num_classes), tf.int32), num_classes - 1)


def _classes(generator, critic):
    """The number of classes of a conditional pair, None for an unconditional one."""
    conditional = is_conditional(generator)
    if conditional != (len(critic.outputs) == 2):
        raise ValueError("a conditional generator needs a critic with an auxiliary classifier "
                         "(images -> [score, class logits]) and the other way round")
    return int(critic.outputs[1].shape[-1]) if conditional else None
