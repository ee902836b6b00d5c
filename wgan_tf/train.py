"""``wgan-tf train``: a training run in a run directory (``wgan_tf.rundir``), resumable exactly.

A checkpoint holds every network, every optimizer's state and the iteration counters. The counters
are also the random state (random numbers come from stateless seeds indexed by them) and the data
position (each critic iteration consumes one batch), so re-running the same command continues
exactly where the last checkpoint stopped, after a crash as after a requested stop.

SIGTERM (``docker stop``, a Kubernetes eviction, a preemption) and Ctrl-C finish the iteration under
way (or the critic iteration, inside the critic boost), write a checkpoint and stop with one line
saying where; the command exits with 128 + the signal's number.

Under ``TF_CONFIG`` the same command is one worker of a multi-worker job (``wgan_tf.distribute``).
The run directory must then be one that every worker shares; the chief alone locks and writes it,
and every worker restores from its checkpoints. The workers agree at every step on whether any of
them got a signal, so that they all stop, and save, at the same iteration.
"""
import contextlib
import dataclasses
import math
import os
import signal
import threading
import zlib

import tensorflow as tf

from wgan_tf import build, callbacks, data, distribute, quality, rundir
from wgan_tf.config import TrainConfig
from wgan_tf.errors import ConfigError, Stopped
from wgan_tf.generative import TrainingInterrupted


def config_from_args(args):
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in fields and v is not None})


def run(args):
    options = {"data_dir": args.data_dir, "cache": args.data_cache}
    train(config_from_args(args), args.out, progress=not args.quiet,
          collective_timeout=args.collective_timeout, **{k: v for k, v in options.items() if v})


def use_xla(config):
    """``--jit-compile auto``: XLA on GPUs; on CPU where benchmarks/train_throughput.py measured it
    faster (see docs/BENCHMARKS.md). Not in a multi-worker job: a step whose all-reduces cross
    machines has not been run with XLA here (no GPUs), so ``on`` must ask for it."""
    if config.jit_compile != "auto":
        return config.jit_compile == "on"
    if distribute.cluster_task() is not None:
        return False
    return bool(tf.config.list_physical_devices("GPU")) or CPU_XLA_FASTER


# benchmarks/train_throughput.py on 2 CPU cores: XLA 0.12 generator it/s, oneDNN without XLA 0.33.
CPU_XLA_FASTER = False


def build_model(config, strategy):
    """The model for ``config``, made and compiled inside ``strategy``'s scope."""
    return build.build_model(config, strategy, jit_compile=use_xla(config))


def checkpoint_manager(model, run_dir):
    checkpoint = tf.train.Checkpoint(**model.checkpoint_items())
    return tf.train.CheckpointManager(checkpoint, os.path.join(run_dir, "checkpoints"),
                                      max_to_keep=3)


def train(config, run_dir, progress=True, extra_callbacks=(),
          collective_timeout=distribute.COLLECTIVE_TIMEOUT, **data_options):
    """Trains (or resumes) the run in ``run_dir`` up to ``config.steps`` iterations and returns the
    model. ``data_options`` go to ``wgan_tf.data.load`` (``data_dir``, ``cache``);
    ``extra_callbacks`` (Keras callbacks) see every logging period first, and what they add to the
    logs in ``on_epoch_end`` (a quality measure, say) lands in metrics.csv.

    Under ``TF_CONFIG`` every worker of the job calls this with the same arguments, and
    ``extra_callbacks`` run on every worker (``wgan_tf.distribute.is_chief`` tells the one that
    should write files). ``collective_timeout``: seconds a worker waits in a collective for the
    others before it gives up.

    Raises ``wgan_tf.errors.Stopped`` after saving a checkpoint when SIGTERM or SIGINT arrived
    (signals are caught only when called from the main thread), and ``wgan_tf.errors.WorkerLost``
    when another worker of the job died, hung or went out of step.
    """
    # The strategy first: splitting the CPU into logical devices, and the collective ops of a
    # multi-worker job, must precede any TensorFlow op.
    job = distribute.Job.start(config.devices, collective_timeout)
    try:
        return _train_job(job, config, run_dir, progress, extra_callbacks, data_options)
    except tf.errors.OpError as e:
        lost = distribute.worker_lost(e) if job.workers > 1 else None
        if lost is None:
            raise
        raise lost from e


def _train_job(job, config, run_dir, progress, extra_callbacks, data_options):
    replicas = job.strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ConfigError(f"batch size {config.batch_size} is not divisible by the {replicas} "
                          f"replicas of {job.describe()}")
    # One report for every load() of the run, so skipped files are counted once and shown at the end.
    options = dict(data_options, report=data.InputReport())
    if config.conditional:
        config = dataclasses.replace(config, class_names=_class_names(config, data_options))
    data.load(config.dataset, config.image_size, config.batch_size, config.channels,
              config.seed, labels=config.conditional,
              **options)  # a bad dataset fails before anything is written
    with _claim(job, run_dir, config) as config:
        model = build_model(config, job.strategy)
        manager = checkpoint_manager(model, run_dir)
        manager.restore_or_initialize()  # every worker, from the chief's checkpoints
        note = model.restored()
        start = int(model.step_counter.numpy())
        _check_shared(job, run_dir, start, model.STEP_NAME)
        if start >= config.steps:
            print(f"{run_dir}: already at {model.STEP_NAME} {start} of {config.steps}")
            return model
        if job.chief:
            rundir.rewind(run_dir, start, next(iter(model.counter_logs())))
        how = f"resuming at {model.STEP_NAME} {start}" if start else "starting"
        print(f"{run_dir}: {how} of {config.steps} on {job.describe()}", flush=True)
        if note:
            print(f"{run_dir}: {note}", flush=True)
        with StopSignals(job) as stop:
            _train(model, config, run_dir, manager, stop, progress, extra_callbacks, options,
                   job.chief)
    return model


def _class_names(config, data_options):
    """The dataset's class names, for a conditional run; a ConfigError where it has none."""
    names = data.class_names(config.dataset, data_options.get("data_dir"))
    if not names:
        raise ConfigError(f"--conditional needs labelled data, and {config.dataset} has no class "
                          "labels (digits, folder:PATH with class subfolders and TFDS datasets "
                          "with a label have them)")
    if config.class_names not in (None, names):
        raise ConfigError(f"{config.dataset} has the classes {names}, not {config.class_names}")
    return names


@contextlib.contextmanager
def _claim(job, run_dir, config):
    """The run directory for as long as the run: the chief locks it and stores (or checks) the
    run's config, and yields it. In a multi-worker job every worker learns whether the chief could,
    so that the others stop with it instead of waiting for it in the first collective."""
    lock = error = None
    if job.chief:
        try:
            lock = rundir.Lock(run_dir)
            rundir.store_config(run_dir, config)
        except ConfigError as e:
            error = e
    try:
        # Workers started with other settings would only fail later, as workers out of step.
        seen = job.gather(error is not None, zlib.crc32(config.to_json().encode()))
        if error is not None:
            raise error
        if seen[0, 0]:
            raise ConfigError(f"the chief could not start the run in {run_dir} (its log says "
                              "why); stopping with it")
        if (seen[:, 1] != seen[0, 1]).any():
            raise ConfigError("the workers of this job were started with different settings; "
                              "run the same wgan-tf train command on every worker")
        yield config
    finally:
        if lock is not None:
            lock.release()


def _check_shared(job, run_dir, start, step_name):
    """Every worker restored the same checkpoint, and sees the chief's config.json: otherwise the
    run directory is not one that every worker shares, and a worker would train from scratch."""
    seen = job.gather(start, os.path.exists(os.path.join(run_dir, rundir.CONFIG)))
    if (seen[:, 0] != start).any() or not seen[:, 1].all():
        raise ConfigError(
            f"{run_dir} must be one directory that every worker shares, but the workers (chief "
            f"first) restored {step_name}s {seen[:, 0].tolist()} and see its {rundir.CONFIG}: "
            f"{[bool(b) for b in seen[:, 1]]}")


def _train(model, config, run_dir, manager, stop, progress, extra_callbacks, options, chief=True):
    start = int(model.step_counter.numpy())
    progress_bar = callbacks.ProgressBar(config.steps, start, f"{model.STEP_NAME}s",
                                         disable=not (progress and chief))
    tensorboard = os.path.join(run_dir, "tensorboard")
    checkpoint = callbacks.RunCheckpoint(manager, run_dir, config.checkpoint_every, chief)
    model.interrupt_requested = stop.requested
    model.iterations_per_call = config.steps_per_execution
    # A call never crosses a logging period's end (a metrics row) or the run's.
    model.call_limit = lambda step: min((step // config.log_every + 1) * config.log_every,
                                        config.steps)
    # The chief's alone: they write the run directory, and run no collective op. Quality first, so
    # that the writers after it get its measures.
    measures = [callbacks.QualityLog(quality.Quality(
        config.dataset, config.image_size, config.channels, config.eval_num, config.seed,
        data_dir=options.get("data_dir")), config.eval_every)] if config.eval_every else []
    writers = [
        *measures,
        progress_bar,
        callbacks.MetricsCSV(os.path.join(run_dir, rundir.METRICS)),
        callbacks.TensorBoardScalars(tensorboard),
        callbacks.SampleGrid(os.path.join(run_dir, "samples"), tensorboard, config.sample_every,
                             config.latent_dim, num=64 if data.point_dim(config.dataset) is None
                             else 1024, seed=config.seed),
    ] if chief else []
    run_callbacks = [
        callbacks.StopAtIteration(config.steps),
        callbacks.StopOnRequest(stop.requested),
        *extra_callbacks,  # before MetricsCSV, so values they add to the logs are written too
        *writers,
        checkpoint,
    ]
    if config.autoencoder and chief:  # real above, reconstruction below (held-out where known)
        run_callbacks.insert(-1, callbacks.ReconstructionGrid(
            os.path.join(run_dir, "samples"), tensorboard, config.sample_every,
            data.held_out(config.dataset) or config.dataset, config, options))
    try:
        while int(model.step_counter.numpy()) < config.steps:
            _fit_periods(model, config, run_callbacks, options)
    except TrainingInterrupted:
        checkpoint.save()
        done = int(model.step_counter.numpy())
        progress_bar.close()
        raise Stopped(f"stopped by {stop.name} at {model.STEP_NAME} {done} of {config.steps}, "
                      f"checkpoint saved; run the same command again to resume",
                      stop.signum) from None
    finally:
        progress_bar.close()
        if options["report"].summary():
            print(f"input: {options['report'].summary()}")


def _fit_periods(model, config, run_callbacks, options):
    """One ``fit`` call over whole logging periods (or, after resuming mid-period, the rest of that
    period), reading the data from the batch the run has reached."""
    done = int(model.step_counter.numpy())
    period = config.log_every
    head = period - done % period
    epoch = done // period
    skip = int(model.batch_counter.numpy())
    dataset = distribute.split_batches(
        model.distribute_strategy,
        lambda rows: data.load(config.dataset, config.image_size, config.batch_size,
                               config.channels, config.seed, skip_batches=skip, rows=rows,
                               labels=config.conditional, **options),
        config.batch_size)
    # fit's steps are calls of the train function, each of up to steps_per_execution iterations
    # (never crossing a period's end: ``model.call_limit``).
    calls = config.steps_per_execution
    if head < period:
        steps_per_epoch, epochs = math.ceil(head / calls), epoch + 1
    else:
        steps_per_epoch, epochs = period // calls, math.ceil(config.steps / period)
    model.fit(dataset, epochs=epochs, initial_epoch=epoch, steps_per_epoch=steps_per_epoch,
              callbacks=run_callbacks, verbose=0, shuffle=False)


class StopSignals:
    """While active (a context manager), SIGTERM and SIGINT ask training to stop at the next
    iteration boundary instead of killing it; a second signal of either kind acts at once, as it
    would have without this. Only the main thread can catch signals: elsewhere this does nothing.

    In a multi-worker ``job`` the decision is the job's: ``requested()`` is true on every worker at
    once when any of them got a signal (one small all-gather), so every worker must ask at the
    same points, as ``fit`` does at each step. A worker stopped for another's signal takes that
    signal's number for its exit status.
    """

    NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "Ctrl-C"}

    def __init__(self, job=None):
        self.signum = None
        self.from_another_worker = False
        self._job = job if job is not None and job.workers > 1 else None
        self._previous = {}

    @property
    def name(self):
        name = self.NAMES.get(self.signum, f"signal {self.signum}")
        return f"{name} to another worker" if self.from_another_worker else name

    def requested(self):
        if self._job is None:
            return self.signum is not None
        mine = self.signum  # read once: a signal may arrive while the workers agree
        agreed = int(self._job.gather(mine or 0)[:, 0].max())
        if agreed and mine is None and self.signum is None:
            self.signum, self.from_another_worker = agreed, True
        return agreed > 0

    def _handle(self, signum, frame):
        self.signum = signum
        self._restore()  # a second signal is not caught

    def _restore(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.NAMES:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        self._restore()
