"""The run directory: its files, its lock, and keeping it consistent across crashes and resumes.

``RUN_DIR/``: ``config.json``, ``metrics.csv``, ``NAME.keras`` per network (``generator.keras`` and
``critic.keras`` for a GAN), ``checkpoints/``, ``samples/``, ``tensorboard/``, and ``.lock`` while a
run holds it.

- One live run per directory: ``lock`` takes an exclusive ``flock`` that the kernel releases when
  the process ends however it ends (``kill -9`` included), so a stale lock cannot exist.
- A crash leaves metrics logged after the last checkpoint; the resumed run logs those iterations
  again. ``rewind`` drops them from ``metrics.csv`` and tells TensorBoard to purge them, so both
  read as one run: every session of a run starts with a ``SessionLog.START`` event at its first
  iteration (TensorBoard's ``purge_step``); TensorBoard takes every START after the first for a
  restart and drops the events written before it at that step or later.
- ``save_keras`` writes a model under a temporary name and renames it into place: a kill during a
  save leaves the previous file, never a broken one, for ``export``.
"""
import csv
import fcntl
import io
import json
import os
import time

from wgan_tf.config import TrainConfig
from wgan_tf.errors import ConfigError

CONFIG = "config.json"
METRICS = "metrics.csv"
LOCK = ".lock"
_TMP_KERAS = ".tmp.keras"


def write_atomically(path, text):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


class Lock:
    """An exclusive lock on a run directory for as long as this object lives (or ``release``)."""

    def __init__(self, run_dir):
        os.makedirs(run_dir, exist_ok=True)
        path = os.path.join(run_dir, LOCK)
        self._file = open(path, "a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            raise ConfigError(f"{run_dir} is being trained by {holder}; wait for it to finish or "
                              "stop it, or use another --out") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()}")
        self._file.flush()

    def release(self):
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def store_config(run_dir, config):
    """Checks ``config`` against the run's stored one (a new run stores it) and returns it."""
    path = os.path.join(run_dir, CONFIG)
    if os.path.exists(path):
        with open(path) as f:
            stored = TrainConfig.from_json(f.read())
        diffs = stored.differences(config)
        if diffs:
            name = diffs[0]
            raise ConfigError(
                f"{run_dir} holds a run with --{name.replace('_', '-')} {getattr(stored, name)}, "
                f"not {getattr(config, name)}; resume with the same settings or use another --out")
    os.makedirs(run_dir, exist_ok=True)
    # The resumable settings (steps, devices, ...) may have changed.
    write_atomically(path, config.to_json())
    return config


def read_run_config(run_dir):
    """A run directory's ``config.json`` as a dict (what export, evaluate and explain read)."""
    path = os.path.join(run_dir, CONFIG)
    if not os.path.isfile(path):
        raise ConfigError(f"{run_dir} is not a training run: no {CONFIG}")
    with open(path) as f:
        return json.load(f)


def load_saved(run_dir, name):
    """A network of a run, as training last saved it (``NAME.keras``), computing in float32
    whatever ``--precision`` trained it (what export, evaluate and explain use)."""
    import keras

    from wgan_tf import models  # noqa: F401 (registers the package's layers for loading)
    from wgan_tf.precision import float32_copy

    path = os.path.join(run_dir, f"{name}.keras")
    if not os.path.isfile(path):
        raise ConfigError(f"{run_dir} has no {name}.keras: train (or finish training) first")
    return float32_copy(keras.saving.load_model(path, compile=False))


def save_keras(model, path):
    """``model.save(path)`` that never leaves a half-written file at ``path``."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name[:-len('.keras')]}.{os.getpid()}{_TMP_KERAS}")
    try:
        model.save(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    os.replace(tmp, path)


def rewind(run_dir, step, step_column, tensorboard_dirs=("tensorboard",)):
    """Start a session of the run at ``step`` (the restored checkpoint's, 0 for a new run): forget
    rows of ``metrics.csv`` whose ``step_column`` is larger, and TensorBoard events from
    ``step + 1`` on."""
    for name in os.listdir(run_dir):  # a save that a kill -9 interrupted
        if name.startswith(".") and name.endswith(_TMP_KERAS):
            os.remove(os.path.join(run_dir, name))
    path = os.path.join(run_dir, METRICS)
    if os.path.exists(path):
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        if rows and step_column in rows[0]:
            column = rows[0].index(step_column)
            kept = [rows[0]] + [r for r in rows[1:] if r and int(r[column]) <= step]
            if len(kept) < len(rows):
                text = io.StringIO()
                csv.writer(text).writerows(kept)
                write_atomically(path, text.getvalue())
    for name in tensorboard_dirs:
        session_start(os.path.join(run_dir, name), step + 1)


def session_start(log_dir, step):
    """A ``SessionLog.START`` event at ``step``, in its own event file. From the second on,
    TensorBoard drops every earlier-written event at ``step`` or later (a restart). Event files
    load in name order, and a file's name starts with its creation time, so this one loads after
    every older file and before the files of the writers this session opens next."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(log_dir, filename_suffix=".purge")
    writer.add_event(event_pb2.Event(
        step=step, wall_time=time.time(),
        session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))
    writer.close()
