"""``GenerativeModel``: what the package's model families (WGAN, the GAN baseline, WAE, VAE) share
under ``fit``.

A family is a ``keras.Model`` whose ``fit`` step is one iteration of its paper's algorithm, which
may read several real batches (Algorithm 1's ``n_critic``). This base class holds what makes such a
step exact, resumable and distributable, so that no family has to repeat it:

- Iteration counters, checkpointed with the weights. They are the run's random state (every random
  number is a pure function of the seed and a counter, ``wgan_tf.rng``) and its data position
  (batches consumed), so a run restored from a checkpoint continues exactly.
- A train function that pulls the step's batches, draws the step's random numbers for the *global*
  batch outside any XLA-compiled code (XLA's Philox gives other floats), and runs ``train_step`` on
  every replica, each keeping its own rows (``wgan_tf.replicas``).
- No symbolic build: under a strategy Keras would build by pulling a batch off the training
  iterator, which would be lost to the data stream and to an exact resume.
- A polite stop: ``interrupt_requested`` (set by the training driver, e.g. on SIGTERM) is checked
  between the sub-steps a family runs from Python, which raise ``TrainingInterrupted``.

A family defines ``train_step(data)`` with ``data = (batches, noise)``, ``draw_noise(global_batch)``,
``batches_per_step``, ``step_counter`` (what ``--steps`` counts), ``batch_counter`` (batches
consumed), ``counter_logs()``, ``sampler`` (latent -> sample: what is exported and plotted),
``networks()`` (saved as ``NAME.keras``) and ``optimizers()``.
"""
import keras
import tensorflow as tf

from wgan_tf import precision


class TrainingInterrupted(Exception):
    """Raised from inside ``fit`` when a stop was requested between sub-steps of an iteration."""


class GenerativeModel(keras.Model):
    batches_per_step = 1
    # What one step is called in progress bars and messages, e.g. "generator iteration".
    STEP_NAME = "iteration"

    def __init__(self, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.seed = int(seed)
        self.interrupt_requested = lambda: False

    def _counter(self, name):
        return self.add_weight(name=name, shape=(), dtype="int64", initializer="zeros",
                               trainable=False, aggregation="only_first_replica")

    # -- What a family defines ---------------------------------------------------------------------

    @property
    def step_counter(self):
        raise NotImplementedError

    @property
    def batch_counter(self):
        return self.step_counter

    @property
    def sampler(self):
        raise NotImplementedError

    @property
    def latent_dim(self):
        return self.sampler.inputs[0].shape[-1]

    num_classes = None  # a conditional family's number of classes

    def refresh_sampler(self):
        """Brings what the sampler needs up to date before it is sampled, measured or saved (the
        generator EMA's standing statistics); nothing by default. Eager, on every worker alike."""
        return None

    def sample(self, latent, labels=None, training=False):
        """Samples of the sampler (``labels`` for a conditional one)."""
        return self.sampler(latent if labels is None else [latent, labels], training=training)

    def networks(self):
        """``{name: keras.Model}``: what a run directory keeps as ``NAME.keras``."""
        raise NotImplementedError

    def optimizers(self):
        """``{attribute name: optimizer}``."""
        raise NotImplementedError

    def counter_logs(self):
        """``{log name: counter}``: the counters every log row carries (names end in
        ``iteration``)."""
        raise NotImplementedError

    def draw_noise(self, global_batch):
        """The step's random numbers for the global batch (a nested structure of tensors)."""
        raise NotImplementedError

    def before_step(self, iterator):
        """Python-level work before each step (e.g. WGAN's critic boost); none by default."""

    def after_step(self):
        """Graph work after each step, in cross-replica context, on values every replica holds
        alike (e.g. the generator EMA's update); none by default."""
        return None  # a body: AutoGraph cannot convert a function that is only a docstring

    def restored(self):
        """Called once the run's checkpoint is restored (or the new run initialized), for state
        the checkpoint may lack; returns a line to tell the user, or None."""
        return None

    def extra_logs(self):
        """``{name: scalar}`` logged beside the metrics: the float16 loss scales, by default."""
        return {f"{name.removesuffix('_optimizer')}_loss_scale": scale.scale.value
                for name, scale in self._loss_scales.items()}

    # -- Optimizers, and float16 loss scaling (wgan_tf.precision) ----------------------------------

    def compile(self, loss_scaling=False, **kwargs):
        """``loss_scaling``: train with dynamic loss scaling (float16 networks)."""
        super().compile(**kwargs)
        self.loss_scaling = bool(loss_scaling)
        self._loss_scales = {}

    def prepare_optimizer(self, name, variables):
        """Build the optimizer ``self.<name>`` for ``variables``, with a loss scale when compiled
        with ``loss_scaling``. Call it from ``compile``, inside the strategy scope the model was
        made in: a Keras 3 optimizer first built inside a distributed train_step fails under
        MirroredStrategy (see DESIGN, known traps)."""
        optimizer = getattr(self, name)
        optimizer.build(variables)
        if self.loss_scaling and name not in self._loss_scales:
            self._loss_scales[name] = precision.LossScale(self, name, optimizer)

    def loss_scale(self, name):
        """The current loss scale of optimizer ``name`` (a tensor), or None without scaling."""
        scale = self._loss_scales.get(name)
        return None if scale is None else scale.scale.value

    def minimize(self, name, tape, loss, variables):
        """One update of ``variables`` by optimizer ``self.<name>`` down ``loss``, recorded on
        ``tape``. Under ``loss_scaling`` returns whether it was made (a bool tensor: False when
        its gradients were not finite and it was skipped), else None."""
        scale = self._loss_scales.get(name)
        if scale is not None:
            return scale.minimize(tape, loss, variables)
        getattr(self, name).apply(tape.gradient(loss, variables), variables)
        return None

    @staticmethod
    def record(tracker, value, made=None):
        """``tracker.update_state(value)``, unless ``made`` (from ``minimize``) says the update
        was skipped: a skipped float16 step's losses may be inf or NaN, and are not logged."""
        if made is None:
            tracker.update_state(value)
        else:
            tracker.update_state(tf.where(made, value, tf.zeros_like(value)),
                                 sample_weight=tf.cast(made, value.dtype))

    # -- Shared ------------------------------------------------------------------------------------

    def checkpoint_items(self):
        """Everything a checkpoint holds: networks, optimizers and counters."""
        counters = {f"{name}s": var for name, var in self.counter_logs().items()}
        scales = {f"{name}_{key}": var for name, scale in self._loss_scales.items()
                  for key, var in scale.variables().items()}
        return {**self.networks(), **self.optimizers(), **counters, **scales}

    def call(self, latent, training=False):
        return self.sampler(latent, training=training)

    def _logs(self):
        # A metric with nothing recorded in the period (every float16 step skipped) is NaN, not
        # Keras' 0.
        logs = {m.name: tf.where(m.count > 0, m.result(), float("nan")) for m in self.metrics}
        logs.update(self.extra_logs())
        logs.update({name: var.value for name, var in self.counter_logs().items()})
        return logs

    def _jit_per_replica(self):
        """XLA for the per-replica step where it can run: on one device, or on GPUs only. On CPU
        devices MirroredStrategy would compile the cross-device function and fail."""
        if not self.jit_compile:
            return False
        strategy = self.distribute_strategy
        return strategy.num_replicas_in_sync == 1 or all(
            "GPU" in d.upper() for d in strategy.extended.worker_devices)

    def next_batch(self, iterator):
        """The next real batch (this worker's replicas' rows of the global batch): images, or
        (images, labels) for a conditional family."""
        batch, labels, _ = keras.utils.unpack_x_y_sample_weight(iterator.get_next())
        return batch if self.num_classes is None else (batch, labels)

    def global_batch_size(self, batch):
        """The global batch size, from one replica's rows of a distributed batch (images, or
        (images, labels)): replicas hold equal shares, and under a multi-worker strategy this
        worker sees only its own replicas."""
        strategy = self.distribute_strategy
        images = batch[0] if isinstance(batch, tuple) else batch
        local = strategy.experimental_local_results(images)[0]
        return tf.shape(local)[0] * strategy.num_replicas_in_sync

    def distributed(self, fn):
        """``fn(*args, **static)`` on every replica, returning replica 0's result (metrics are
        all-reduced inside the step, so every replica holds the global values). ``static``:
        Python values, the same for every replica."""
        strategy = self.distribute_strategy

        def run(*args, **static):
            # fn itself, not a wrapper: MirroredStrategy runs a tf.function's Python function
            # in each replica's thread, where the all-reduces can meet.
            result = strategy.run(fn, args=args, kwargs=static)
            return strategy.experimental_local_results(result)[0]
        return run

    def step_schedule(self):
        """A Python value that selects the traced variant of the next step (a family's choice
        made from its counters, e.g. WGAN's lazy penalty); None: one variant."""
        return None

    def make_train_function(self, force=False):
        """Keras's train function runs ``train_step`` on one batch; a family's step may read
        ``batches_per_step`` batches, needs random numbers drawn outside XLA, and may have Python-
        level work before it (``before_step``), because under MirroredStrategy a gradient all-reduce
        cannot sit inside graph control flow (merge_call in a while loop)."""
        if self.train_function is not None and not force:
            return self.train_function
        replica_step = tf.function(self.train_step, jit_compile=self._jit_per_replica())
        run = self.distributed(replica_step)

        @tf.function
        def step(iterator, schedule):
            batches = tuple(self.next_batch(iterator) for _ in range(self.batches_per_step))
            noise = self.draw_noise(self.global_batch_size(batches[0]))
            logs = run((batches, noise), **({} if schedule is None else {"schedule": schedule}))
            self.after_step()
            return logs

        def function(iterator):
            logs = None
            for _ in range(self.iterations_this_call()):
                # Between iterations of one call, as fit's callbacks do between calls: a stop
                # comes within one iteration whatever iterations_per_call is.
                if logs is not None and self.interrupt_requested():
                    break
                self.before_step(iterator)
                logs = step(iterator, self.step_schedule())
            return logs

        function.step = step  # the traced step, for inspection (benchmarks/multi_worker.py)
        self.train_function = function
        return function

    # -- Several iterations per call of the train function (--steps-per-execution) -----------------

    # Iterations each call of the train function runs (a fit "step" is then that many), and the
    # step a call must not pass (a callable of the current step, set by the training driver: the
    # end of the logging period or of the run); None: no limit.
    iterations_per_call = 1
    call_limit = None

    def iterations_this_call(self):
        """How many iterations the next call runs: ``iterations_per_call``, or fewer where
        ``call_limit`` comes first. Between them no fit callback runs, so the per-step work of
        Keras's loop (callbacks, logs) is paid once per call, not per iteration."""
        if self.iterations_per_call == 1 or self.call_limit is None:
            return self.iterations_per_call
        step = int(self.step_counter.numpy())
        return max(min(self.iterations_per_call, self.call_limit(step) - step), 1)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a strategy, Keras builds an unbuilt model by pulling one batch off the training
        # iterator, and that batch would be lost to the data stream (and to an exact resume). The
        # networks are built when they are constructed, so there is nothing to build.
        pass
