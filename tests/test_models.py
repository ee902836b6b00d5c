import numpy as np
import pytest

from wgan_tf import models
from wgan_tf.errors import ConfigError


@pytest.mark.parametrize("size,channels", [(16, 1), (32, 3), (64, 3)])
def test_dcgan_shapes(size, channels):
    g, c = models.build_pair("dcgan", size, channels, latent_dim=10, filters=8)
    z = np.random.default_rng(0).normal(size=(2, 10)).astype("float32")
    images = g(z).numpy()
    assert images.shape == (2, size, size, channels)
    assert np.abs(images).max() <= 1.0
    assert c(images).shape == (2, 1)


def test_paper_dcgan_matches_reference_sizes():
    # DCGAN_G / DCGAN_D of the reference code at 64x64x3, nz 100, ngf = ndf = 64.
    g, c = models.build_pair("dcgan")
    assert [l.output.shape[-1] for l in g.layers if l.name.startswith(("project", "up"))] == \
        [512, 256, 128, 64]
    bn_weights = sum(int(np.prod(w.shape)) for l in g.layers if l.name.startswith("bn")
                     for w in l.trainable_weights)
    conv_weights = g.count_params() - bn_weights - sum(
        int(np.prod(w.shape)) for l in g.layers for w in l.non_trainable_weights)
    assert conv_weights == 100 * 512 * 16 + 512 * 256 * 16 + 256 * 128 * 16 + 128 * 64 * 16 \
        + 64 * 3 * 16


def test_critic_score_is_unbounded():
    _, c = models.build_pair("dcgan", 16, 1, filters=8)
    assert c.layers[-1].get_config().get("activation") in (None, "linear")
    # A sigmoid would keep scores in (0, 1); scaling the last layer shows they are not.
    last = c.get_layer("score")
    last.set_weights([w * 1000 for w in last.get_weights()])
    scores = c(np.random.default_rng(1).uniform(-1, 1, (16, 16, 16, 1)).astype("float32")).numpy()
    assert scores.min() < 0 or scores.max() > 1


def test_weights_initialised_as_dcgan():
    g, _ = models.build_pair("dcgan", 64, 3)
    kernel = g.get_layer("up0").kernel.numpy()
    assert abs(kernel.std() - 0.02) < 0.002 and abs(kernel.mean()) < 0.002
    gamma = g.get_layer("bn0").gamma.numpy()
    assert abs(gamma.mean() - 1.0) < 0.01


def test_nobn_generator_has_constant_filters_and_no_batch_norm():
    g, _ = models.build_pair("dcgan-nobn", 32, 3, filters=16)
    assert not [l for l in g.layers if "batch_normalization" in l.__class__.__name__.lower()]
    assert {l.filters for l in g.layers if l.name.startswith(("project", "up"))} == {16}


def test_mlp_pair_for_images_and_points():
    g, c = models.build_pair("mlp", 16, 1, latent_dim=4)
    assert [l.units for l in g.layers if l.name.startswith("hidden")] == [512, 512, 512]
    assert g.output_shape == (None, 16, 16, 1) and c.output_shape == (None, 1)
    g, c = models.build_pair("mlp", latent_dim=2, point_dim=2)
    assert g.output_shape == (None, 2) and c.input_shape == (None, 2)


@pytest.mark.parametrize("kwargs,message", [
    (dict(arch="resnet"), "unknown arch"),
    (dict(arch="dcgan", image_size=48), "power of two"),
    (dict(arch="dcgan", image_size=8), "power of two"),
    (dict(arch="dcgan", point_dim=2), "needs --arch mlp"),
])
def test_bad_architecture_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        models.build_pair(**kwargs)
