"""``WGAN``: Algorithm 1 of "Wasserstein GAN" (Arjovsky, Chintala, Bottou 2017) as a ``keras.Model``.

``model.fit(dataset)`` runs one generator iteration per step: ``n_critic`` critic updates, each on a
fresh real batch and fresh prior samples, then one generator update. ``train_step`` reads like the
paper's Algorithm 1; ``penalty="gp"`` swaps weight clipping for WGAN-GP's gradient penalty.

Two additions that users of GAN libraries expect on their own photos, both off by default (the
paper has neither): ``ema=DECAY`` keeps an exponential moving average of the generator
(``wgan_tf.ema``), which is then the model's sampler (sampled, evaluated, exported); and
``augment="color,translation,cutout"`` applies DiffAugment (``wgan_tf.augment``) to every image
the critic sees, real or generated, in both players' updates. ``lookahead=K`` pulls both players'
weights halfway back to slow copies of themselves every K generator iterations
(``wgan_tf.lookahead``).

Conditional models: given a conditional generator (``[latent, labels] -> images``) and a
conditional critic (``wgan_tf.models``), the real batches are (images, labels); the critic's
generated images have the real batch's labels, the generator's update asks for uniformly drawn
ones. A projection critic (``[images, labels] -> score``; Miyato & Koyama 2018) puts the class in
the score, so the step is Algorithm 1's with every score a class's, the gradient penalty's
included. A critic with an auxiliary classifier (``images -> [score, class logits]``; the WGAN-GP
paper's conditional model, AC-GAN, Odena et al. 2017) keeps an unconditional score; the critic also
descends the classifier's cross-entropy on the real labels (weight 1), the generator on its own
samples of the classes asked for (weight 0.1), as the paper's code.

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
from wgan_tf.lookahead import Lookahead
from wgan_tf.models import batch_norms, critic_conditioning, is_conditional
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
                 generated_class_weight=config.CLASS_WEIGHT_GENERATOR, penalty_every=1,
                 gp_target=1.0, drift=0.0, lookahead=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if penalty not in ("clip", "gp", None):
            raise ValueError(f"penalty must be 'clip', 'gp' or None, got {penalty!r}")
        self.generator = generator
        self.critic = critic
        self.n_critic = int(n_critic)
        self.penalty = penalty
        self.clip_value = clip_value
        self.gp_weight = gp_weight
        self.penalty_every = int(penalty_every)
        self.gp_target = float(gp_target)
        self.drift = float(drift)
        self.critic_boost = penalty == "clip" if critic_boost is None else bool(critic_boost)
        if penalty == "clip":
            lipschitz.clip_weights(critic, clip_value)
        self.ema_decay = float(ema_decay) if ema_decay else None
        self.generator_ema = ema.average_network(generator) if self.ema_decay else None
        # Lookahead (wgan_tf.lookahead): slow copies of both players' trained weights.
        self.lookahead = Lookahead([critic, generator], lookahead) if lookahead else None
        self.augment_policies = diffaugment.parse(augment)
        self.num_classes, self.conditioning = _classes(generator, critic)
        # Without batch norm every score is its own sample's, and the critic scores the real and
        # the generated batch in one call (larger, faster convolutions: the same numbers).
        self.per_sample_critic = not batch_norms(critic)
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
        if self.conditioning == "acgan":
            trackers += [self.class_loss_tracker, self.generated_class_loss_tracker]
        return trackers

    # -- Algorithm 1 -------------------------------------------------------------------------------

    def train_step(self, data, schedule=None):
        """One generator iteration: ``n_critic`` critic updates (lines 2-8), one generator update
        (lines 9-11). ``data`` is ``(real_batches, noise)``: this replica's rows of ``n_critic`` real
        batches, and the global prior samples for each update (``draw_noise``), of which each
        replica uses its own rows. ``schedule`` (``step_schedule``): which critic updates compute
        the gradient penalty, where it is lazy."""
        real_batches, noise = data
        penalties = schedule or (True,) * self.n_critic
        for real, critic_noise, penalty in zip(real_batches, noise["critic"], penalties):
            self.critic_step(real, critic_noise, penalty)
        self.generator_step(noise["generator"])
        return self._logs()

    def critic_step(self, real, noise, penalty=True):
        """Lines 3-7: a real batch and prior samples, ascend the critic's estimate, clip (or, with
        ``penalty``, descend WGAN-GP's gradient penalty)."""
        real, labels = real if self.num_classes else (real, None)
        fake = self.generate(replica_rows(noise["z"]), labels)
        real = self.augment(real, noise.get("augment_real"))
        fake = self.augment(fake, noise.get("augment_fake"))
        with tf.GradientTape() as tape:
            # The critic's generated images are of the real batch's classes.
            real_scores, fake_scores, real_logits = self.critique_pair(real, fake, labels)
            per_sample = self.critic_loss(real_scores, fake_scores)
            loss = estimate_loss = global_mean(per_sample)
            penalized = self.penalty == "gp" and penalty
            if penalized:
                mix = replica_rows(noise["mix"])
                # Conditional: at each interpolate, the critic of its own class.
                gradient_penalty = global_mean(lipschitz.gradient_penalty(
                    lambda x, training: self.critique(x, labels, training)[0], real, fake, mix,
                    target=self.gp_target, loss_scale=self.loss_scale("critic_optimizer")))
                # Lazy regularisation: every penalty_every-th update, penalty_every times the weight.
                loss += self.gp_weight * self.penalty_every * gradient_penalty
            if self.drift:
                loss += self.drift * global_mean(tf.square(real_scores[:, 0]))
            if self.conditioning == "acgan":
                class_loss = global_mean(losses.class_cross_entropy(real_logits, labels))
                loss += self.class_weight * class_loss
        # Weight clipping (line 7) is the variables' WeightClip constraint, applied by the optimizer.
        made = self.minimize("critic_optimizer", tape, loss, self.critic.trainable_variables)
        self.critic_iterations.assign_add(1)

        self.record(self.estimate_tracker, self.estimate(sum_over_replicas(estimate_loss)), made)
        self.record(self.critic_loss_tracker, sum_over_replicas(loss), made)
        if penalized:
            self.record(self.penalty_tracker, sum_over_replicas(gradient_penalty), made)
        if self.conditioning == "acgan":
            self.record(self.class_loss_tracker, sum_over_replicas(class_loss), made)

    def generator_step(self, noise):
        """Lines 9-10: prior samples, descend -f(G(z)) (conditional: of the classes asked for,
        and with an auxiliary classifier its cross-entropy of them)."""
        labels = replica_rows(noise["labels"]) if self.num_classes else None
        with tf.GradientTape() as tape:
            fake = self.generate(replica_rows(noise["z"]), labels)
            scores, logits = self.critique(self.augment(fake, noise.get("augment_fake")), labels)
            loss = global_mean(self.generator_loss(scores))
            if self.conditioning == "acgan":
                class_loss = global_mean(losses.class_cross_entropy(logits, labels))
                loss += self.generated_class_weight * class_loss
        made = self.minimize("generator_optimizer", tape, loss, self.generator.trainable_variables)
        self.generator_iterations.assign_add(1)
        self.record(self.generator_loss_tracker, sum_over_replicas(loss), made)
        if self.conditioning == "acgan":
            self.record(self.generated_class_loss_tracker, sum_over_replicas(class_loss), made)

    def generate(self, latent, labels=None, training=True):
        """The generator's images of ``latent`` (and ``labels``, for a conditional one)."""
        return self.generator(latent if labels is None else [latent, labels], training=training)

    def critique(self, images, labels=None, training=True):
        """(scores ``[B, 1]``, class logits ``[B, classes]`` or None) of the critic; a projection
        critic scores each image as one of its class ``labels``."""
        if self.conditioning == "projection":
            return self.critic([images, labels], training=training), None
        outputs = self.critic(images, training=training)
        return tuple(outputs) if self.conditioning == "acgan" else (outputs, None)

    def critique_pair(self, real, fake, labels=None):
        """(real scores, generated scores, real class logits or None): in one critic call where
        the critic is per sample; in two where batch norm normalises each batch by its own
        statistics (the paper's code calls its critic on each batch)."""
        if not self.per_sample_critic:
            real_scores, real_logits = self.critique(real, labels)
            return real_scores, self.critique(fake, labels)[0], real_logits
        both = None if labels is None else tf.concat([labels, labels], 0)
        scores, logits = self.critique(tf.concat([real, fake], 0), both)
        count = tf.shape(real)[0]
        return scores[:count], scores[count:], None if logits is None else logits[:count]

    def augment(self, images, numbers):
        """DiffAugment of this replica's images with its rows of the global batch's numbers."""
        if not self.augment_policies:
            return images
        return diffaugment.augment(images, replica_rows(numbers), self.augment_policies)

    def refresh_sampler(self):
        """The EMA's standing statistics (``ema.standing_statistics``), recomputed when the average
        has changed since they were last: a pure function of its weights and the seed."""
        step = int(self.generator_iterations.numpy())
        if self.generator_ema is None or getattr(self, "_standing_at", None) == step:
            return
        ema.standing_statistics(self.generator_ema, self.seed, self.num_classes)
        self._standing_at = step

    def checkpoint_items(self):
        slow = self.lookahead.variables_by_name() if self.lookahead else {}
        return {**super().checkpoint_items(), **slow}

    def restored(self):
        step = int(self.step_counter.numpy())
        if self.lookahead is None or not self.lookahead.start(step) or step == 0:
            return None
        return (f"Lookahead (every {self.lookahead.every} {self.STEP_NAME}s) switched on at "
                f"{self.STEP_NAME} {step}")

    def after_step(self):
        # Lookahead first: the EMA averages the weights the step leaves.
        if self.lookahead is not None:
            self.lookahead.after(self.generator_iterations.value)
        if self.generator_ema is not None:
            ema.update(self.generator_ema, self.generator,
                       ema.decay_at(self.ema_decay, self.generator_iterations.value))

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

    def penalty_due(self, critic_iteration):
        """Whether critic iteration ``critic_iteration`` computes the gradient penalty."""
        return self.penalty == "gp" and critic_iteration % self.penalty_every == 0

    def step_schedule(self):
        """With a lazy penalty, which of the next generator iteration's critic updates compute it
        (a tuple of bools, from the critic counter: the same after a resume and on any number of
        replicas); None where every one does. A choice made in Python: each pattern is its own
        traced step, since a gradient all-reduce cannot sit inside graph control flow."""
        if self.penalty != "gp" or self.penalty_every == 1:
            return None
        first = int(self.critic_iterations.numpy())
        return tuple(self.penalty_due(first + i) for i in range(self.n_critic))

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
            def boost_iteration(iterator, penalty):
                real = self.next_batch(iterator)
                run(real, self.critic_noise(self.global_batch_size(real),
                                            self.critic_iterations.value), penalty=penalty)
            self._boost_function = boost_iteration
        for _ in range(self.boost_iterations()):
            if self.interrupt_requested():
                raise TrainingInterrupted("stopped during the critic boost")
            self._boost_function(iterator, self.penalty_due(int(self.critic_iterations.numpy())))

    def make_train_function(self, force=False):
        if force:
            self._boost_function = None
        return super().make_train_function(force)


def uniform_labels(count, num_classes, seed, stream, counter, lane):
    """``count`` class labels drawn uniformly (int32), a pure function of the counters."""
    u = rng.uniform([count], seed, stream, counter, lane)
    return tf.minimum(tf.cast(tf.floor(u * num_classes), tf.int32), num_classes - 1)


def _classes(generator, critic):
    """(number of classes, the critic's conditioning) of a conditional pair; (None, None) for an
    unconditional one."""
    conditioning = critic_conditioning(critic)
    if is_conditional(generator) != (conditioning is not None):
        raise ValueError("a conditional generator needs a conditional critic (a projection "
                         "critic, [images, labels] -> score, or one with an auxiliary classifier, "
                         "images -> [score, class logits]) and the other way round")
    if conditioning is None:
        return None, None
    if conditioning == "projection":
        return int(critic.get_layer("class_embedding").input_dim), conditioning
    return int(critic.outputs[1].shape[-1]), conditioning
