"""Small configurations that train in seconds on a CPU, and running the ``wgan-tf`` command as a
user does, in a fresh process."""
import os
import subprocess
import sys
import time
from pathlib import Path

from wgan_tf.config import TrainConfig


def tiny_config(**overrides):
    values = dict(dataset="digits", image_size=16, channels=1, latent_dim=8, filters=8,
                  batch_size=8, n_critic=2, critic_boost=False, steps=3, log_every=2,
                  sample_every=2, checkpoint_every=2, jit_compile="off", seed=1)
    values.update(overrides)
    return TrainConfig(**values)


# The installed command, as a user runs it, and the flags of a run that trains in seconds.
WGAN_TF = str(Path(sys.executable).with_name("wgan-tf"))
TINY_FLAGS = ["--dataset", "digits", "--image-size", "16", "--channels", "1", "--latent-dim", "8",
              "--filters", "8", "--batch-size", "8", "--n-critic", "2", "--jit-compile", "off",
              "--seed", "1", "--quiet"]


def user_env(**extra):
    """The environment a user's shell would give the command: without the test process's own
    TensorFlow settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    env.update(extra)
    return env


def wgan_tf(*args, timeout=300, check=True, **kwargs):
    """Runs ``wgan-tf ARGS`` in a fresh process; returns the CompletedProcess (text)."""
    result = subprocess.run([WGAN_TF, *map(str, args)], capture_output=True, text=True,
                            timeout=timeout, env=kwargs.pop("env", None) or user_env(), **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"wgan-tf {' '.join(map(str, args))} exited {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def start_wgan_tf(*args, **kwargs):
    """``wgan-tf ARGS`` as a background process (stdout and stderr piped, text)."""
    return subprocess.Popen([WGAN_TF, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=kwargs.pop("env", None) or user_env(), **kwargs)


def metrics_rows(run_dir):
    """A run directory's metrics.csv as dicts ([] before its first row)."""
    import csv

    path = os.path.join(run_dir, "metrics.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def saved_weights(run_dir, name="generator"):
    """The weights of a run's ``NAME.keras``, as NumPy arrays."""
    import keras

    import wgan_tf.models  # noqa: F401 (registers the package's layers)

    model = keras.saving.load_model(os.path.join(run_dir, f"{name}.keras"), compile=False)
    return [w.numpy() for w in model.weights]


def resumed_and_two_device_runs(root, flags, device_flags=()):
    """Tiny runs of ``wgan-tf train FLAGS`` in ``root``: 5 iterations straight ("straight"), 3
    then resumed to 5 ("resumed"), and 3 with ``device_flags`` on one and two devices ("one",
    "two"); {name: run directory}."""
    names = {n: str(Path(root) / n) for n in ("straight", "resumed", "one", "two")}
    wgan_tf("train", *flags, "--steps", 5, "--out", names["straight"])
    wgan_tf("train", *flags, "--steps", 3, "--out", names["resumed"])
    rerun = wgan_tf("train", *flags, "--steps", 5, "--out", names["resumed"])
    assert "resuming at generator iteration 3 of 5" in rerun.stdout
    for devices, name in ((1, "one"), (2, "two")):
        wgan_tf("train", *flags, *device_flags, "--steps", 3, "--devices", devices,
                "--out", names[name])
    return names


def wait_for(predicate, timeout=120, what="a condition", process=None):
    """Polls ``predicate()`` until true; fails after ``timeout`` s, or when ``process`` exits."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"process exited {process.returncode} before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


# The project's real colour photographs, beside the repository (../shared/data/flowers), when
# present; tests that need photos make a small labelled folder otherwise.
FLOWERS = Path(__file__).resolve().parents[2] / "shared" / "data" / "flowers"


def labelled_photo_folder(root, classes=("daisy", "tulip"), per_class=24, size=40):
    """A small folder of labelled colour JPEGs (``root/CLASS/NNN.jpg``) whose classes differ in
    colour and texture, so that a classifier can tell them apart; returns ``root``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        folder = Path(root) / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = np.zeros((size, size, 3)) + [200 * (c % 2), 90, 200 * (1 - c % 2)]
            pixels = np.clip(base + rng.normal(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:03d}.jpg", quality=90)
    return Path(root)


def photos(tmp_path_factory):
    """The folder spec of the project's photographs, or of a small labelled folder made here."""
    if FLOWERS.is_dir():
        return f"folder:{FLOWERS}"
    return f"folder:{labelled_photo_folder(tmp_path_factory.mktemp('photos'))}"


FLOWER_CLASSES = ("daisy", "dandelion", "rose", "sunflower", "tulip")


def make_conditional_run(path, class_names=FLOWER_CLASSES, latent_dim=4, image_size=8,
                         channels=3, seed=0):
    """A run directory as conditional training leaves it, with a tiny untrained generator of the
    conditional interface: inputs ``latent`` float32 [B, latent_dim] and ``labels`` int32 [B]
    (an embedding of the label beside the latent), images in [-1, 1]; returns the generator."""
    import json

    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    latent = keras.Input((latent_dim,), name="latent")
    labels = keras.Input((), dtype="int32", name="labels")
    x = layers.Concatenate()([latent, layers.Embedding(len(class_names), 4)(labels)])
    x = layers.Dense(image_size * image_size * channels)(x)
    x = layers.Reshape((image_size, image_size, channels))(x)
    generator = keras.Model([latent, labels], layers.Activation("tanh")(x), name="generator")
    path = Path(path)
    path.mkdir(parents=True)
    generator.save(path / "generator.keras")
    (path / "config.json").write_text(json.dumps(
        {"latent_dim": latent_dim, "image_size": image_size, "channels": channels,
         "dataset": "folder:flowers", "conditional": True, "class_names": list(class_names)}))
    return generator
