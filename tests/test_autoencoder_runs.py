"""VAE, WAE-MMD and WAE-GAN trained through the CLI in fresh processes: the run directory, exact
resume, one and two devices, evaluate."""
import csv
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image


MODELS = {"wae-mmd": ["--model", "wae"], "wae-gan": ["--model", "wae", "--penalty", "gan"],
          "vae": ["--model", "vae"]}
# 16x16 digits, tiny networks; the schedule's epoch is 3 steps, so resuming crosses a decay.
TINY = ["--dataset", "digits:train", "--image-size", "16", "--channels", "1", "--filters", "8",
        "--batch-size", "8", "--epoch-steps", "3", "--log-every", "2", "--sample-every", "2",
        "--checkpoint-every", "2", "--jit-compile", "off", "--seed", "4", "--quiet"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def start(run_dir, model, steps, *extra):
    return subprocess.Popen([sys.executable, "-m", "wgan_tf.cli", "train", *MODELS[model], *TINY,
                             "--steps", str(steps), *extra, "--out", str(run_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)


def finish(*processes):
    """The processes' outputs, once each has exited 0."""
    outputs = []
    for p in processes:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out
        outputs.append(out)
    return outputs


def weights(run_dir, names):
    return {f"{name}/{w.path}": w.numpy() for name in names
            for w in keras.saving.load_model(run_dir / f"{name}.keras", compile=False).weights}


def rows(run_dir):
    return list(csv.DictReader(open(run_dir / "metrics.csv")))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Per model: a run stopped at 2 steps and resumed to 6 by the same command, and a straight
    run of 6 steps as the reference, all in fresh processes; WAE-MMD also on two devices."""
    root = tmp_path_factory.mktemp("autoencoders")
    result = {model: {kind: root / f"{model}-{kind}" for kind in ("straight", "resumed")}
              for model in MODELS}
    finish(*(start(result[model]["resumed"], model, 2) for model in MODELS),
           *(start(result[model]["straight"], model, 6) for model in MODELS))
    result["wae-mmd"]["two"] = root / "wae-mmd-two-devices"
    _, *resumed = finish(start(result["wae-mmd"]["two"], "wae-mmd", 6, "--devices", "2"),
                         *(start(result[model]["resumed"], model, 6) for model in MODELS))
    for model, output in zip(MODELS, resumed, strict=True):
        result[model]["rerun output"] = output
    return result


NETWORKS = {"wae-mmd": ["encoder", "decoder"], "wae-gan": ["encoder", "decoder", "adversary"],
            "vae": ["encoder", "decoder"]}
METRICS = {"wae-mmd": {"objective", "reconstruction_cost", "mmd"},
           "wae-gan": {"objective", "reconstruction_cost", "gan_penalty", "adversary_loss"},
           "vae": {"objective", "reconstruction_cost", "kl"}}


@pytest.mark.parametrize("model", MODELS)
def test_run_directory(runs, model):
    run = runs[model]["straight"]
    for name in NETWORKS[model]:
        assert (run / f"{name}.keras").is_file()
    config = json.load(open(run / "config.json"))
    assert (config["model"], config["latent_dim"], config["epoch_steps"]) == \
        (model[:3], 8, 3)
    assert config["penalty_weight"] == (1.0 if model == "vae" else 10.0)
    table = rows(run)
    assert [int(r["iteration"]) for r in table] == [2, 4, 6]
    assert set(table[0]) == {"iteration"} | METRICS[model]
    samples = sorted(os.listdir(run / "samples"))
    assert "iter_000006.png" in samples and "reconstruction_000006.png" in samples
    # 8 columns, 4 pairs of rows (real, reconstruction) of 16x16 with padding 2, enlarged 2x
    assert Image.open(run / "samples" / "reconstruction_000006.png").size == (2 * 146, 2 * 146)


@pytest.mark.parametrize("model", MODELS)
def test_stop_and_resume_is_bit_exact(runs, model):
    straight, resumed = runs[model]["straight"], runs[model]["resumed"]
    assert "resuming at iteration 2 of 6" in runs[model]["rerun output"]
    a, b = weights(straight, NETWORKS[model]), weights(resumed, NETWORKS[model])
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(b[key], a[key], err_msg=key)
    # Every weight is bit-identical. A logged value is a sum reduced across threads, and on some
    # CPUs (measured: an AMX machine, the VAE's objective) two identical runs can report it one
    # float32 ulp apart while its components and the gradients agree bit for bit.
    for r1, r2 in zip(rows(straight), rows(resumed), strict=True):
        assert r1.keys() == r2.keys()
        for key in r1:
            np.testing.assert_allclose(float(r2[key]), float(r1[key]), rtol=1e-6, atol=0,
                                       err_msg=key)


def test_one_and_two_devices_agree_for_wae_mmd(runs):
    one, two = runs["wae-mmd"]["straight"], runs["wae-mmd"]["two"]
    assert json.load(open(two / "config.json"))["devices"] == 2
    for r1, r2 in zip(rows(one), rows(two), strict=True):
        for key in r1:
            np.testing.assert_allclose(float(r2[key]), float(r1[key]), rtol=1e-4, err_msg=key)
    a, b = weights(one, NETWORKS["wae-mmd"]), weights(two, NETWORKS["wae-mmd"])
    for key in a:
        # Adam turns the round-off in the zero gradient of a bias before batch norm into steps of
        # the learning rate's size; batch norm removes those biases (and their moving means
        # follow them). Everything else must agree (the in-process test with SGD checks them all).
        if not ((key.endswith("conv/bias") and "final" not in key) or "moving_mean" in key):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-3, atol=1e-5, err_msg=key)


def test_evaluate_cli_adds_reconstruction_and_sharpness(runs, tmp_path):
    folder = tmp_path / "digits"  # not "digits", so no classifier is trained here
    folder.mkdir()
    from wgan_tf.data import builtin

    for i, image in enumerate(builtin.digits_array(16, 3, "train")[0][:40]):
        Image.fromarray(image).save(folder / f"{i}.png")
    out = tmp_path / "eval.json"
    result = subprocess.run(
        [sys.executable, "-m", "wgan_tf.cli", "evaluate", str(runs["vae"]["straight"]),
         "--dataset", f"folder:{folder}", "--num", "40", "--out", str(out)],
        capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr
    measures = json.load(open(out))
    assert measures["iteration"] == 6 and measures["reconstruction_dataset"] == "digits:test"
    assert 0 < measures["reconstruction"] < 4  # mean squared error of pixels in [-1, 1]
    assert measures["sharpness_real"] > 0 and measures["sharpness"] >= 0
    assert "sliced_wasserstein" in measures
