"""``wgan-tf explain``: tf-keras-vis maps of a Keras 3 critic, and the figure."""
import json

import keras
import numpy as np
from PIL import Image

from wgan_tf import cli, explain, models


def make_run(path, arch="dcgan", dataset="digits"):
    generator, critic = models.build_pair(arch, 16, 1, latent_dim=8, filters=8)
    path.mkdir()
    generator.save(path / "generator.keras")
    critic.save(path / "critic.keras")
    (path / "config.json").write_text(json.dumps(
        {"dataset": dataset, "arch": arch, "image_size": 16, "channels": 1, "latent_dim": 8}))
    return str(path)


def images(num=3):
    return np.random.default_rng(0).uniform(-1, 1, (num, 16, 16, 1)).astype(np.float32)


def test_maps_of_the_dcgan_critic():
    critic = models.dcgan_critic(16, 1, filters=8)
    layer = explain.gradcam_layer(critic)
    assert layer.output.shape[1:3] == (4, 4)  # the last map before the 4x4 -> 1x1 score
    for maps in (explain.saliency_maps(critic, images()),
                 explain.gradcam_plus_plus_maps(critic, images(), layer)):
        assert maps.shape == (3, 16, 16)
        assert np.all(np.isfinite(maps)) and maps.min() >= 0 and maps.max() <= 1


def test_gradcam_survives_large_critic_scores():
    # Grad-CAM++ weighs by exp(score); a WGAN-GP critic's scores can be in the hundreds.
    critic = models.dcgan_critic(16, 1, filters=8, normalization="layer")
    loud = keras.Model(critic.input, keras.layers.Rescaling(1e4)(critic.output))
    maps = explain.gradcam_plus_plus_maps(loud, images(), explain.gradcam_layer(loud))
    assert np.all(np.isfinite(maps)) and maps.max() > 0


def test_mlp_critic_has_no_gradcam_layer():
    assert explain.gradcam_layer(models.mlp_critic(16, 1, units=16)) is None


def test_explain_cli_writes_a_png(tmp_path):
    out = tmp_path / "figures" / "critic.png"
    assert cli.main(["explain", make_run(tmp_path / "run"), "--out", str(out), "--num", "4"]) == 0
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.width > picture.height


def test_explain_refuses_points(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    assert cli.main(["explain", run, "--dataset", "toy:8gaussians",
                     "--out", str(tmp_path / "x.png")]) == 2
    assert "2-D points" in capsys.readouterr().err
