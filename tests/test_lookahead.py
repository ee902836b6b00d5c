"""Lookahead on both players (``wgan_tf.lookahead``, ``--lookahead K``): the pull-back as the papers
write it, inside the training step of both GAN families; as users run it, in fresh processes:
recorded in config.json, exact across a stop and a resume, the same on two devices (and on two
workers: tests/test_multi_worker.py), a bad period refused in one line."""
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import (TINY_FLAGS, metrics_rows, resumed_and_two_device_runs, saved_weights,
                     tiny_config, wgan_tf)
from wgan_tf import build, distribute
from wgan_tf.lookahead import Lookahead

pytestmark = pytest.mark.timeout(600)


def test_the_pull_back_moves_the_slow_copy_halfway_and_restarts_from_it():
    network = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    start = [w.numpy() for w in network.trainable_weights]
    lookahead = Lookahead([network], every=2)

    def move(by):
        for w in network.trainable_weights:
            w.assign(w.value + by)

    move(1.0)
    assert not lookahead.after(tf.constant(1, tf.int64))  # not a multiple of the period
    for w, s in zip(network.trainable_weights, start):
        np.testing.assert_allclose(w.numpy(), s + 1.0, rtol=1e-6)
    assert lookahead.after(tf.constant(2, tf.int64))
    for w, slow, s in zip(network.trainable_weights, lookahead.slow, start):
        np.testing.assert_allclose(w.numpy(), s + 0.5, rtol=1e-6)  # s + 0.5 * ((s + 1) - s)
        np.testing.assert_array_equal(slow.numpy(), w.numpy())
    move(1.0)
    lookahead.after(tf.constant(4, tf.int64))
    for w, s in zip(network.trainable_weights, start):
        np.testing.assert_allclose(w.numpy(), s + 1.0, rtol=1e-6)  # (s + .5) + .5 * 1
    with pytest.raises(ValueError, match="lookahead period must be >= 1"):
        Lookahead([network], every=0)


def _trained(model_name, lookahead, steps):
    """A tiny model of ``model_name`` after ``steps`` generator iterations: (critic weights,
    generator weights) after each iteration."""
    keras.utils.set_random_seed(0)
    cfg = tiny_config(model=model_name, n_critic=1, lookahead=lookahead)
    model = build.build_model(cfg, distribute.make_strategy(1))
    images = tf.random.uniform([8, 16, 16, 1], -1, 1, seed=1)
    batches = tf.data.Dataset.from_tensors(images).repeat()
    history = [[w.numpy() for w in model.critic.trainable_weights + model.generator.trainable_weights]]
    for _ in range(steps):
        model.fit(batches, steps_per_epoch=1, epochs=1, verbose=0)
        history.append([w.numpy() for w in
                        model.critic.trainable_weights + model.generator.trainable_weights])
    return history


@pytest.mark.parametrize("model_name", ["wgan", "gan"])
def test_every_kth_iteration_ends_halfway_between_the_slow_copy_and_the_step(model_name):
    """Trained side by side from the same weights, data and random numbers: with --lookahead 2
    the first iteration is the plain run's; the second ends at the start plus half of what the
    plain run's two iterations moved (the slow copy is the start; the optimizer states are the
    same after one shared iteration)."""
    plain, pulled = _trained(model_name, None, 2), _trained(model_name, 2, 2)
    for a, b in zip(plain[0], pulled[0], strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(plain[1], pulled[1], strict=True):
        np.testing.assert_array_equal(a, b)
    moved = [np.abs(b - s).max() for s, b in zip(plain[0], plain[2])]
    assert max(moved) > 1e-4  # the step moved the weights: the check below can fail
    for start, two, got in zip(plain[0], plain[2], pulled[2], strict=True):
        np.testing.assert_allclose(got, start + 0.5 * (two - start), rtol=1e-5, atol=1e-7)


LOOKAHEAD = [*TINY_FLAGS, "--penalty", "gp", "--n-critic", 1, "--lookahead", 2,
             "--log-every", 1, "--checkpoint-every", 100, "--sample-every", 100]


@pytest.fixture(scope="module")
def lookahead_runs(tmp_path_factory):
    """--lookahead 2 for 5 iterations straight, stopped at 3 (between two synchronisations) and
    resumed; and 3 iterations on one and two devices."""
    return resumed_and_two_device_runs(tmp_path_factory.mktemp("lookahead"), LOOKAHEAD)


def test_lookahead_is_recorded_and_resumes_exactly(lookahead_runs):
    stored = json.loads(open(os.path.join(lookahead_runs["straight"], "config.json")).read())
    assert stored["lookahead"] == 2
    for name in ("generator", "critic"):
        for a, b in zip(saved_weights(lookahead_runs["straight"], name),
                        saved_weights(lookahead_runs["resumed"], name), strict=True):
            np.testing.assert_array_equal(a, b)
    assert metrics_rows(lookahead_runs["straight"]) == metrics_rows(lookahead_runs["resumed"])


def test_lookahead_is_the_same_on_two_devices(lookahead_runs):
    for name in ("generator", "critic"):
        for a, b in zip(saved_weights(lookahead_runs["one"], name),
                        saved_weights(lookahead_runs["two"], name), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    for a, b in zip(metrics_rows(lookahead_runs["one"]), metrics_rows(lookahead_runs["two"]),
                    strict=True):
        for key in ("wasserstein", "critic_loss", "generator_loss"):
            np.testing.assert_allclose(float(a[key]), float(b[key]), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("flags,message", [
    (["--lookahead", "-1"], "lookahead must be a period of generator iterations >= 1 (0: none), "
                            "got -1"),
    (["--model", "vae", "--lookahead", "5"], "--ema, --augment, --lookahead and --conditional "
                                             "are for GANs (--model wgan or gan)"),
])
def test_a_bad_lookahead_is_refused_in_one_line(tmp_path, flags, message):
    result = wgan_tf("train", *TINY_FLAGS, *flags, "--out", tmp_path / "run", check=False)
    assert result.returncode == 2 and message in result.stderr and \
        len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "run").exists()


def trained_weights(run_dir, name):
    """The trained weights of a run's ``NAME.keras`` (not batch norm's moving statistics, which
    Lookahead leaves alone)."""
    import wgan_tf.models  # noqa: F401 (registers the package's layers)

    model = keras.saving.load_model(os.path.join(run_dir, f"{name}.keras"), compile=False)
    return [w.numpy() for w in model.trainable_weights]


def test_lookahead_switched_on_at_a_resume_starts_from_the_restored_weights(tmp_path):
    """A run trained 3 iterations without it, resumed with --lookahead 4 to 4: its slow copies
    are the weights at 3 (not the networks' initial ones), so the 4th iteration ends halfway
    between them and where the same run without Lookahead ends it. Switching it off again is
    refused in one line."""
    flags = [*TINY_FLAGS, "--penalty", "gp", "--n-critic", 1, "--log-every", 1,
             "--checkpoint-every", 100, "--sample-every", 100]
    switched, plain = str(tmp_path / "switched"), str(tmp_path / "plain")
    wgan_tf("train", *flags, "--steps", 3, "--out", switched)
    at_three = {n: trained_weights(switched, n) for n in ("generator", "critic")}
    resumed = wgan_tf("train", *flags, "--lookahead", 4, "--steps", 4, "--out", switched)
    assert "Lookahead (every 4 generator iterations) switched on at generator iteration 3" in \
        resumed.stdout
    assert json.loads(open(os.path.join(switched, "config.json")).read())["lookahead"] == 4
    wgan_tf("train", *flags, "--steps", 4, "--out", plain)
    for name in ("generator", "critic"):
        for start, two, got in zip(at_three[name], trained_weights(plain, name),
                                   trained_weights(switched, name), strict=True):
            np.testing.assert_allclose(got, start + 0.5 * (two - start), rtol=1e-5, atol=1e-7)
    off = wgan_tf("train", *flags, "--steps", 5, "--out", switched, check=False)
    assert off.returncode == 2 and off.stderr.strip().endswith(
        "holds a run with --lookahead 4, not None; resume with the same settings or use another "
        "--out"), off.stderr
