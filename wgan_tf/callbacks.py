"""Keras callbacks for a training run: progress, TensorBoard, sample grids, checkpoints, stopping.

All of them count in the model's steps (``model.step_counter``: generator iterations for a GAN, the
paper's x-axis), read from the model's counter.
"""
import csv
import io
import math
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from wgan_tf import data, pictures, rng
from wgan_tf.generative import TrainingInterrupted
from wgan_tf.rundir import save_keras, write_atomically


def _step(model):
    return int(model.step_counter.numpy())


class StopAtIteration(keras.callbacks.Callback):
    """Ends ``fit`` once the model has made ``steps`` generator iterations."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def on_train_batch_end(self, batch, logs=None):
        if _step(self.model) >= self.steps:
            self.model.stop_training = True


class StopOnRequest(keras.callbacks.Callback):
    """Ends ``fit`` before the next step when ``requested()`` says so (a signal arrived), by
    raising ``TrainingInterrupted``; the caller saves a checkpoint. Asked before a step, not after
    one: a step that ends a logging period has then been logged (``on_epoch_end``) by the time the
    checkpoint at it is saved, so the resumed run does not miss its row."""

    def __init__(self, requested):
        super().__init__()
        self.requested = requested

    def on_train_batch_begin(self, batch, logs=None):
        if self.requested():
            raise TrainingInterrupted("stop requested")


class ProgressBar(keras.callbacks.Callback):
    """One tqdm bar over the whole run (which may span several ``fit`` calls), with the metrics."""

    def __init__(self, total, initial=0, desc="generator iterations", disable=False):
        super().__init__()
        self.bar = tqdm(total=total, initial=initial, unit="it", desc=desc,
                        dynamic_ncols=True, disable=disable)

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(_step(self.model) - self.bar.n)
        self.bar.set_postfix({k: f"{float(v):.4g}" for k, v in (logs or {}).items()
                              if not k.endswith("iteration") and not math.isnan(float(v))},
                             refresh=False)

    def close(self):
        self.bar.close()


class MetricsCSV(keras.callbacks.Callback):
    """``metrics.csv``: a row per logging period, the model's counters first (the step counter
    leading), appended across resumes. A column that appears later (a resumed run with
    ``--eval-every``, say) is added to the header, earlier rows left empty in it."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        row = {k: int(logs.pop(k)) for k in self.model.counter_logs()}
        row.update({k: float(v) for k, v in sorted(logs.items())})
        header = self._header()
        if header and not set(row) <= set(header):
            header = header + [k for k in row if k not in header]
            with open(self.path, newline="") as f:
                rows = list(csv.DictReader(f))
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
            write_atomically(self.path, text.getvalue())
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header or list(row))
            if not header:
                writer.writeheader()
            writer.writerow(row)

    def _header(self):
        if not os.path.exists(self.path) or os.path.getsize(self.path) == 0:
            return None
        with open(self.path, newline="") as f:
            return next(csv.reader(f), None)


class TensorBoardScalars(keras.callbacks.Callback):
    """Each logging period's metrics as TensorBoard scalars at step = generator iteration."""

    def __init__(self, log_dir):
        super().__init__()
        self.writer = tf.summary.create_file_writer(log_dir)

    def on_epoch_end(self, epoch, logs=None):
        step = _step(self.model)
        with self.writer.as_default(step=step):
            for name, value in (logs or {}).items():
                # NaN: a measure not taken this period (--eval-every), or nothing recorded.
                if not name.endswith("_iteration") and not math.isnan(float(value)):
                    tf.summary.scalar(name, float(value))
        self.writer.flush()


class SampleGrid(keras.callbacks.Callback):
    """A grid of samples from one fixed latent batch every ``every`` generator iterations (and at
    the end), as ``samples/iter_NNNNNN.png`` and a TensorBoard image."""

    TAG = "samples"

    def __init__(self, out_dir, log_dir, every, latent_dim, num=64, seed=0):
        super().__init__()
        self.out_dir, self.every = out_dir, every
        os.makedirs(out_dir, exist_ok=True)
        self.latent = rng.normal([num, latent_dim], seed, stream=3, counter=0)
        self.writer = tf.summary.create_file_writer(log_dir)
        self.last = None

    def on_epoch_end(self, epoch, logs=None):
        if _step(self.model) % self.every == 0:
            self.write()

    def on_train_end(self, logs=None):
        self.write()

    def write(self):
        step = _step(self.model)
        if step == self.last:
            return
        self.last = step
        picture = self.draw(step)
        with self.writer.as_default(step=step):
            tf.summary.image(self.TAG, picture[None])
        self.writer.flush()

    COLUMNS_PER_CLASS = 8

    def draw(self, step):
        """Writes the step's picture file and returns the picture (uint8 [H, W, C]). A conditional
        model's grid has one row per class, the same latents in every row."""
        classes = self.model.num_classes
        self.model.refresh_sampler()
        if classes:
            columns = self.COLUMNS_PER_CLASS
            latent = tf.tile(self.latent[:columns], [classes, 1])
            labels = tf.repeat(tf.range(classes), columns)
            samples = self.model.sample(latent, labels).numpy()
        else:
            columns = None
            samples = self.model.sample(self.latent).numpy()
        path = os.path.join(self.out_dir, f"iter_{step:06d}.png")
        if samples.ndim == 2:  # 2-D points: a scatter plot instead of a grid
            return pictures.save_scatter(samples, path, title=f"generator iteration {step}")
        picture = pictures.grid(pictures.to_uint8(samples), columns=columns)
        pictures.save_png(picture, path)
        return picture


class QualityLog(keras.callbacks.Callback):
    """Every ``every`` steps (a multiple of the logging period), the quality of the model's
    samples (``quality``: a ``wgan_tf.quality.Quality``) into the period's logs, so that
    metrics.csv and TensorBoard get them; NaN in the other rows. The measures are those of the
    model's sampler (the generator's EMA where the model keeps one); with an EMA, the raw
    generator's are logged too, as ``raw_NAME``. Put it before the callbacks that write the
    logs."""

    def __init__(self, quality, every):
        super().__init__()
        self.quality, self.every = quality, every

    def _networks(self):
        networks = {"": self.model.sampler}
        if getattr(self.model, "generator_ema", None) is not None:
            networks["raw_"] = self.model.generator
        return networks

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        measure = _step(self.model) % self.every == 0
        if measure:
            self.model.refresh_sampler()
        for prefix, network in self._networks().items():
            measured = self.quality.measure(network, self.model.num_classes) if measure else {}
            logs.update({prefix + key: measured.get(key, float("nan"))
                         for key in self.quality.keys()})


class RunCheckpoint(keras.callbacks.Callback):
    """Saves a ``tf.train.CheckpointManager`` checkpoint every ``every`` steps and at the end, plus
    every network as ``NAME.keras`` in the run directory (``generator.keras`` and ``critic.keras``
    for a GAN), each written atomically.

    In a multi-worker job every worker saves, as TensorFlow's multi-worker checkpointing asks
    (a save may need every worker's variables): the chief (``chief=True``) into the run
    directory, the others into a temporary directory that they delete at once.
    """

    def __init__(self, manager, run_dir, every, chief=True):
        super().__init__()
        self.manager, self.run_dir, self.every, self.chief = manager, run_dir, every, chief
        # The step of the newest checkpoint, known alike on every worker (the others never see
        # the chief's manager change).
        latest = manager.latest_checkpoint
        self.saved_step = int(latest.rsplit("-", 1)[1]) if latest else None

    def on_epoch_end(self, epoch, logs=None):
        if _step(self.model) % self.every == 0:
            self.save()

    def on_train_end(self, logs=None):
        self.save()

    def save(self):
        """A checkpoint at the current step, unless there is one: a stop requested halfway
        through the critic boost then resumes from that checkpoint and redoes the boost."""
        step = _step(self.model)
        if step == self.saved_step:
            return
        self.saved_step = step
        self.model.refresh_sampler()  # saved with what it is sampled with
        if not self.chief:
            with tempfile.TemporaryDirectory(prefix="wgan-tf-worker-checkpoint-") as scratch:
                tf.train.CheckpointManager(self.manager.checkpoint, scratch, max_to_keep=1).save(
                    checkpoint_number=step)
            return
        self.manager.save(checkpoint_number=step)
        for name, network in self.model.networks().items():
            save_keras(network, os.path.join(self.run_dir, f"{name}.keras"))


class ReconstructionGrid(SampleGrid):
    """An auto-encoder's reconstructions of one fixed batch of real images (the first ``num`` of
    ``dataset`` under the run's seed) every ``every`` steps and at the end, as
    ``samples/reconstruction_NNNNNN.png`` and a TensorBoard image: pairs of rows, real above and
    its reconstruction below."""

    TAG = "reconstructions"
    COLUMNS = 8

    def __init__(self, out_dir, log_dir, every, dataset, config, data_options=None, num=32):
        super().__init__(out_dir, log_dir, every, config.latent_dim, num=1, seed=config.seed)
        batches = data.load(dataset, config.image_size, num, config.channels, config.seed,
                            **(data_options or {}))
        self.real = next(iter(batches)).numpy()

    def draw(self, step):
        reconstructed = self.model.reconstruct(self.real).numpy()
        picture = pictures.grid(pairs_of_rows(self.real, reconstructed, self.COLUMNS),
                                columns=self.COLUMNS)
        pictures.save_png(picture, os.path.join(self.out_dir, f"reconstruction_{step:06d}.png"))
        return picture


def pairs_of_rows(real, reconstructed, columns):
    """uint8 images ordered for a ``columns``-wide grid: a row of ``real``, the row of their
    reconstructions below it, and so on."""
    real, reconstructed = pictures.to_uint8(real), pictures.to_uint8(reconstructed)
    rows = []
    for start in range(0, len(real), columns):
        rows += [real[start:start + columns], reconstructed[start:start + columns]]
    return np.concatenate(rows)
