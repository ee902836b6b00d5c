import csv
import json
import os

import keras
import numpy as np
import pytest

from helpers import tiny_config
from wgan_tf import cli
from wgan_tf.train import train


def generator_weights(run_dir):
    model = keras.saving.load_model(os.path.join(run_dir, "generator.keras"), compile=False)
    return [w.numpy() for w in model.weights]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("straight"))
    train(tiny_config(steps=3), run_dir, progress=False)
    return run_dir


def test_run_directory_layout(straight_run):
    for name in ("config.json", "metrics.csv", "generator.keras", "critic.keras", "checkpoints",
                 "samples", "tensorboard"):
        assert os.path.exists(os.path.join(straight_run, name)), name
    assert json.load(open(os.path.join(straight_run, "config.json")))["arch"] == "dcgan"
    rows = list(csv.DictReader(open(os.path.join(straight_run, "metrics.csv"))))
    assert [int(r["generator_iteration"]) for r in rows] == [2, 3]
    assert [int(r["critic_iteration"]) for r in rows] == [4, 6]
    assert {"wasserstein", "critic_loss", "generator_loss"} <= set(rows[0])
    assert sorted(os.listdir(os.path.join(straight_run, "samples"))) == \
        ["iter_000002.png", "iter_000003.png"]


def test_stop_and_resume_gives_the_same_generator(straight_run, tmp_path):
    run_dir = str(tmp_path / "resumed")
    train(tiny_config(steps=2), run_dir, progress=False)
    train(tiny_config(steps=3), run_dir, progress=False)  # the same command with more steps
    for resumed, straight in zip(generator_weights(run_dir), generator_weights(straight_run),
                                 strict=True):
        np.testing.assert_allclose(resumed, straight, rtol=1e-6, atol=1e-7)
    rows = list(csv.DictReader(open(os.path.join(run_dir, "metrics.csv"))))
    assert [int(r["generator_iteration"]) for r in rows] == [2, 3]


def test_same_seed_same_run_other_seed_other_run(straight_run, tmp_path):
    train(tiny_config(steps=3), str(tmp_path / "again"), progress=False)
    train(tiny_config(steps=3, seed=2), str(tmp_path / "other"), progress=False)
    same, other = generator_weights(str(tmp_path / "again")), generator_weights(str(tmp_path / "other"))
    reference = generator_weights(straight_run)
    assert all(np.array_equal(a, b) for a, b in zip(same, reference, strict=True))
    assert not all(np.allclose(a, b) for a, b in zip(other, reference))


def test_resume_refuses_other_settings(straight_run):
    from wgan_tf.errors import ConfigError

    with pytest.raises(ConfigError, match="--arch dcgan"):
        train(tiny_config(arch="mlp", steps=4), straight_run, progress=False)


def test_finished_run_is_left_alone(straight_run, capsys):
    before = open(os.path.join(straight_run, "metrics.csv")).read()
    train(tiny_config(steps=3), straight_run, progress=False)
    assert open(os.path.join(straight_run, "metrics.csv")).read() == before
    assert "already at generator iteration 3" in capsys.readouterr().out


def test_cli_trains_toy_points(tmp_path, capsys):
    out = str(tmp_path / "toy")
    status = cli.main(["train", "--dataset", "toy:8gaussians", "--arch", "mlp", "--penalty", "gp",
                       "--batch-size", "16", "--steps", "2", "--log-every", "1",
                       "--sample-every", "2", "--jit-compile", "off", "--quiet", "--out", out])
    assert status == 0
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["latent_dim"] == 2 and config["critic_boost"] is False
    assert os.path.exists(os.path.join(out, "samples", "iter_000002.png"))


@pytest.mark.parametrize("args,message", [
    (["--dataset", "mnist-ish"], "unknown dataset 'mnist-ish'"),
    (["--dataset", "toy:moons"], "unknown toy dataset toy:moons"),
    (["--arch", "resnet"], "unknown arch 'resnet'"),
    (["--image-size", "48"], "image size must be a power of two >= 16, got 48"),
    (["--batch-size", "63", "--devices", "2"], "batch size 63 is not divisible by the number of "
                                               "devices 2"),
    (["--penalty", "spectral"], "unknown penalty 'spectral' for --model wgan; choose clip or gp"),
    (["--steps", "0"], "steps must be positive"),
    (["--channels", "2"], "channels must be 1 or 3"),
    (["--model", "gan", "--penalty", "clip"], "--model gan takes no --penalty, got --penalty clip"),
    (["--learning-rate", "0"], "learning-rate must be positive"),
    (["--beta-1", "0.5"], "--beta-1 and --beta-2 are Adam's; RMSProp takes neither"),
])
def test_bad_configuration_is_one_line(tmp_path, capsys, args, message):
    out = str(tmp_path / "bad")
    status = cli.main(["train", *args, "--out", out, "--quiet"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1 and message in err, err
    assert err.startswith("wgan-tf train: error:")


def test_optimizer_choice_keeps_the_penalty_learning_rate():
    import keras

    from wgan_tf.distribute import make_strategy
    from wgan_tf.train import build_model

    model = build_model(tiny_config(optimizer="adam"), make_strategy(1))
    for opt in (model.critic_optimizer, model.generator_optimizer):
        assert isinstance(opt, keras.optimizers.Adam) and opt.beta_1 == 0.5
        assert np.isclose(float(opt.learning_rate), 5e-5)
    assert model.critic_optimizer is not model.generator_optimizer


def test_keras_files_are_replaced_atomically(tmp_path, monkeypatch):
    """A save that dies halfway (a kill during the write) leaves the previous file whole."""
    from wgan_tf import models, rundir

    path = str(tmp_path / "generator.keras")
    small = models.mlp_generator(latent_dim=2, units=4, output_shape=(2,))
    rundir.save_keras(small, path)
    before = open(path, "rb").read()

    def dies_halfway(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        rundir.save_keras(small, path)
    assert open(path, "rb").read() == before
    assert keras.saving.load_model(path, compile=False).output_shape == (None, 2)
    assert sorted(os.listdir(tmp_path)) == ["generator.keras"]
