"""``wgan-tf train``: a training run in a run directory, resumable exactly.

Run directory: ``config.json``, ``metrics.csv`` (one row per logging period of ``--log-every``
generator iterations: means over the period, and the iteration counters at its end),
``generator.keras``, ``critic.keras``, ``checkpoints/``, ``samples/``, ``tensorboard/``.

A checkpoint holds both players' weights, both optimizers' state and the iteration counters. The
counters are also the random state (latent vectors come from stateless seeds indexed by them) and the
data position (each critic iteration consumes one batch), so re-running the same command continues
exactly where the last checkpoint stopped.
"""
import argparse
import dataclasses
import json
import math
import os

import keras
import tensorflow as tf

from wgan_tf import callbacks, data, distribute, models
from wgan_tf.config import TrainConfig, make_optimizer
from wgan_tf.errors import ConfigError
from wgan_tf.gan import GAN, WGAN


def add_arguments(parser):
    d = TrainConfig()
    a = parser.add_argument
    a("--dataset", default=d.dataset, help="digits, toy:8gaussians, toy:25gaussians, "
      "toy:swissroll, folder:PATH, lsun-lmdb:PATH or a TFDS name like lsun/bedroom")
    a("--arch", default=d.arch, help="generator: dcgan, dcgan-nobn or mlp (default %(default)s)")
    a("--objective", default=d.objective,
      help="wasserstein (default) or gan, the paper's standard-GAN baseline (-log D trick)")
    a("--penalty", default=None,
      help="clip (WGAN, the default) or gp (WGAN-GP); none with --objective gan")
    a("--image-size", type=int, default=d.image_size)
    a("--channels", type=int, default=d.channels)
    a("--latent-dim", type=int, default=None,
      help=f"default {d.latent_dim}, 2 for toy datasets")
    a("--filters", type=int, default=d.filters, help="DCGAN base filters (default %(default)s)")
    a("--batch-size", type=int, default=d.batch_size, help="global batch (default %(default)s)")
    a("--n-critic", type=int, default=None, help="critic iterations per generator iteration "
      "(default 5; 1 with --objective gan)")
    a("--clip-value", type=float, default=d.clip_value)
    a("--gp-weight", type=float, default=d.gp_weight)
    a("--critic-boost", action=argparse.BooleanOptionalAction,
      default=None, help="100 critic iterations for the first 25 generator iterations and every "
      "500th (default: on with --penalty clip, off with gp)")
    a("--optimizer", default=None, choices=("rmsprop", "adam"),
      help="both players' optimizer (default: RMSProp with clipping, Adam otherwise)")
    a("--steps", type=int, default=d.steps, help="generator iterations (default %(default)s)")
    a("--seed", type=int, default=d.seed)
    a("--devices", type=int, default=d.devices,
      help="replicas: GPUs, or logical CPU devices where there is no GPU")
    a("--log-every", type=int, default=d.log_every, help="metrics.csv row period")
    a("--sample-every", type=int, default=d.sample_every)
    a("--checkpoint-every", type=int, default=d.checkpoint_every)
    a("--jit-compile", default=d.jit_compile, choices=("auto", "on", "off"),
      help="XLA for the training step (auto: where it was measured faster)")
    a("--data-dir", default=None, help="TFDS data directory")
    a("--data-cache", default=None, metavar="DIR",
      help="folder/LMDB sources: decode every image once into DIR (for small sets)")
    a("--out", required=True, help="run directory; an existing one is resumed")
    a("--quiet", action="store_true", help="no progress bar")


def config_from_args(args):
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    if "latent_dim" not in values:
        values["latent_dim"] = 2 if args.dataset.startswith("toy:") else TrainConfig.latent_dim
    return TrainConfig(**values)


def run(args):
    options = {"data_dir": args.data_dir, "cache": args.data_cache}
    train(config_from_args(args), args.out, progress=not args.quiet,
          **{k: v for k, v in options.items() if v})


def load_config(run_dir, config):
    """Checks ``config`` against the run's stored one, and stores it."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        os.makedirs(run_dir, exist_ok=True)
        with open(path, "w") as f:
            f.write(config.to_json())
        return config
    with open(path) as f:
        stored = TrainConfig.from_json(f.read())
    diffs = stored.differences(config)
    if diffs:
        name = diffs[0]
        raise ConfigError(
            f"{run_dir} holds a run with --{name.replace('_', '-')} {getattr(stored, name)}, "
            f"not {getattr(config, name)}; resume with the same settings or use another --out")
    with open(path, "w") as f:  # the resumable settings (steps, devices, ...) may have changed
        f.write(config.to_json())
    return config


def read_run_config(run_dir):
    """A run directory's ``config.json`` as a dict (what export, evaluate and explain read)."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise ConfigError(f"{run_dir} is not a training run: no config.json")
    with open(path) as f:
        return json.load(f)


def load_saved(run_dir, name):
    """``generator`` or ``critic`` of a run, as training last saved it (``NAME.keras``)."""
    path = os.path.join(run_dir, f"{name}.keras")
    if not os.path.isfile(path):
        raise ConfigError(f"{run_dir} has no {name}.keras: train (or finish training) first")
    return keras.saving.load_model(path, compile=False)


def use_xla(config):
    """``--jit-compile auto``: XLA on GPUs; on CPU where benchmarks/train_throughput.py measured it
    faster (see docs/BENCHMARKS.md)."""
    if config.jit_compile != "auto":
        return config.jit_compile == "on"
    return bool(tf.config.list_physical_devices("GPU")) or CPU_XLA_FASTER


# benchmarks/train_throughput.py on 2 CPU cores: XLA 0.12 generator it/s, oneDNN without XLA 0.33.
CPU_XLA_FASTER = False


def build_model(config, strategy):
    """The WGAN for ``config``, made and compiled inside ``strategy``'s scope."""
    with strategy.scope():
        keras.utils.set_random_seed(config.seed)
        generator, critic = models.build_pair(
            config.arch, config.image_size, config.channels, config.latent_dim, config.filters,
            critic_normalization="layer" if config.penalty == "gp" else "batch",
            point_dim=data.point_dim(config.dataset))
        if config.objective == "gan":
            model = GAN(generator, critic, n_critic=config.n_critic, seed=config.seed)
        else:
            model = WGAN(generator, critic, n_critic=config.n_critic, penalty=config.penalty,
                         clip_value=config.clip_value, gp_weight=config.gp_weight,
                         critic_boost=config.critic_boost, seed=config.seed)
        optimizers = {f"{player}_optimizer": make_optimizer(config.optimizer, config.penalty)
                      for player in ("critic", "generator") if config.optimizer}
        model.compile(jit_compile=use_xla(config), **optimizers)
    return model


def checkpoint_manager(model, run_dir):
    checkpoint = tf.train.Checkpoint(
        generator=model.generator, critic=model.critic,
        critic_optimizer=model.critic_optimizer, generator_optimizer=model.generator_optimizer,
        generator_iterations=model.generator_iterations, critic_iterations=model.critic_iterations)
    return tf.train.CheckpointManager(checkpoint, os.path.join(run_dir, "checkpoints"),
                                      max_to_keep=3)


def train(config, run_dir, progress=True, extra_callbacks=(), **data_options):
    """Trains (or resumes) the run in ``run_dir`` up to ``config.steps`` generator iterations and
    returns the ``WGAN``. ``data_options`` go to ``wgan_tf.data.load`` (``data_dir``, ``cache``);
    ``extra_callbacks`` (Keras callbacks) see every logging period first, and what they add to the
    logs in ``on_epoch_end`` (a quality measure, say) lands in metrics.csv."""
    # One report for every load() of the run, so skipped files are counted once and shown at the end.
    options = dict(data_options, report=data.InputReport())
    data.load(config.dataset, config.image_size, config.batch_size, config.channels,
              config.seed, **options)  # a bad dataset fails before anything is written
    config = load_config(run_dir, config)
    strategy = distribute.make_strategy(config.devices)
    model = build_model(config, strategy)
    manager = checkpoint_manager(model, run_dir)
    manager.restore_or_initialize()
    start = int(model.generator_iterations.numpy())
    if start >= config.steps:
        print(f"{run_dir}: already at generator iteration {start} of {config.steps}")
        return model

    progress_bar = callbacks.ProgressBar(config.steps, start, disable=not progress)
    tensorboard = os.path.join(run_dir, "tensorboard")
    run_callbacks = [
        callbacks.StopAtIteration(config.steps),
        *extra_callbacks,  # before MetricsCSV, so values they add to the logs are written too
        progress_bar,
        callbacks.MetricsCSV(os.path.join(run_dir, "metrics.csv")),
        callbacks.TensorBoardScalars(tensorboard),
        callbacks.SampleGrid(os.path.join(run_dir, "samples"), tensorboard, config.sample_every,
                             config.latent_dim, num=64 if data.point_dim(config.dataset) is None
                             else 1024, seed=config.seed),
        callbacks.RunCheckpoint(manager, run_dir, config.checkpoint_every),
    ]
    try:
        while int(model.generator_iterations.numpy()) < config.steps:
            _fit_periods(model, config, run_callbacks, options)
    finally:
        progress_bar.close()
        if options["report"].summary():
            print(f"input: {options['report'].summary()}")
    return model


def _fit_periods(model, config, run_callbacks, options):
    """One ``fit`` call over whole logging periods (or, after resuming mid-period, the rest of that
    period), reading the data from the batch the run has reached."""
    done = int(model.generator_iterations.numpy())
    period = config.log_every
    head = period - done % period
    epoch = done // period
    dataset = data.load(config.dataset, config.image_size, config.batch_size, config.channels,
                        config.seed, skip_batches=int(model.critic_iterations.numpy()), **options)
    if head < period:
        steps_per_epoch, epochs = head, epoch + 1
    else:
        steps_per_epoch, epochs = period, math.ceil(config.steps / period)
    model.fit(dataset, epochs=epochs, initial_epoch=epoch, steps_per_epoch=steps_per_epoch,
              callbacks=run_callbacks, verbose=0, shuffle=False)
