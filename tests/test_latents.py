"""The latents the served signatures draw: truncation (within psi, the truncated normal, seed by
seed) and the spherical interpolation (exact ends); the generator helpers for both kinds."""
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from helpers import make_conditional_run
from wgan_tf import latents, models

DIM = 16
SEEDS = tf.range(-1000, 1000, dtype=tf.int64)  # 32,000 coordinates


# As the signatures run them: in a graph (eagerly, map_fn loops in Python, a seed at a time).
truncated_from_seeds = tf.function(latents.truncated_from_seeds)
from_seeds = tf.function(latents.from_seeds)


def truncated(seeds, psi, dim=DIM):
    seeds = tf.convert_to_tensor(seeds, tf.int64)
    psi = tf.broadcast_to(tf.constant(psi, tf.float32), tf.shape(seeds))
    return truncated_from_seeds(seeds, psi, dim).numpy()


@pytest.mark.parametrize("psi", [0.1, 0.5, 1.0, 2.0])
def test_truncation_keeps_every_coordinate_within_psi(psi):
    z = truncated(SEEDS, psi)
    assert z.dtype == np.float32 and z.shape == (2000, DIM)
    assert np.abs(z).max() <= np.float32(psi)


@pytest.mark.parametrize("psi", [0.5, 1.0, 2.0])
def test_truncation_follows_the_truncated_normal(psi):
    z = truncated(SEEDS, psi).ravel()
    law = stats.truncnorm(-psi, psi)
    ks = stats.kstest(z, law.cdf)
    assert ks.pvalue > 1e-3, ks
    # Not the shapes of the known wrong tricks: psi * N(0,1) clipped, or N(0,1) / psi clipped.
    assert abs(z.std() - law.std()) < 0.01, (z.std(), law.std())
    # The coordinates already within the bound are the untruncated latent's own.
    untruncated = from_seeds(SEEDS, DIM).numpy().ravel()
    inside = np.abs(untruncated) <= psi
    np.testing.assert_array_equal(z[inside], untruncated[inside])
    assert not np.any(z[~inside] == untruncated[~inside])


def test_truncation_limits_and_refusals():
    seeds = tf.range(50, dtype=tf.int64)
    untruncated = from_seeds(seeds, DIM).numpy()
    assert np.abs(untruncated).max() < 5.7  # Box-Muller on a uniform floored at 1e-7
    for psi in (6.0, np.inf):  # no coordinate to resample: the untruncated latent, bit for bit
        np.testing.assert_array_equal(truncated(seeds, psi), untruncated)
    np.testing.assert_array_equal(truncated(seeds, 0.0), np.zeros((50, DIM), np.float32))
    for psi in (-0.5, np.nan):
        with pytest.raises(tf.errors.InvalidArgumentError, match="must be >= 0"):
            truncated(seeds, psi)


def test_truncated_latent_depends_on_its_seed_and_psi_alone():
    z = truncated_from_seeds(tf.constant([3, 9, -4, 3], tf.int64),
                             tf.constant([0.5, 1.0, 0.7, 2.0]), DIM).numpy()
    np.testing.assert_array_equal(z[0], truncated([3], 0.5)[0])
    np.testing.assert_array_equal(z[1], truncated(tf.range(20, dtype=tf.int64), 1.0)[9])
    np.testing.assert_array_equal(z[2], truncated([-4, 5], 0.7)[0])
    np.testing.assert_array_equal(z[3], truncated([3], 2.0)[0])


def test_slerp_ends_exactly_and_follows_the_arc():
    a = from_seeds(tf.constant([1, 2, 3], tf.int64), 100).numpy()
    b = from_seeds(tf.constant([4, 5, 6], tf.int64), 100).numpy()
    path = latents.slerp(a, b, tf.constant([0.0, 1.0, 0.5])).numpy()
    np.testing.assert_array_equal(path[0], a[0])
    np.testing.assert_array_equal(path[1], b[1])
    # Halfway: sin(w/2) / sin(w) (a + b) = (a + b) / (2 cos(w/2)), w the angle between them.
    a, b = a[2].astype(np.float64), b[2].astype(np.float64)
    omega = np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    np.testing.assert_allclose(path[2], (a + b) / (2 * np.cos(omega / 2)), rtol=1e-4, atol=1e-5)
    # Unit vectors stay on the sphere all along; parallel ones take the line, without NaN.
    u = tf.constant([[1.0, 0.0]] * 5)
    v = tf.constant([[0.0, 1.0]] * 5)
    ts = tf.linspace(0.0, 1.0, 5)
    np.testing.assert_allclose(np.linalg.norm(latents.slerp(u, v, ts), axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(latents.slerp(u, 2 * u, ts), [[1 + t, 0] for t in ts.numpy()],
                               rtol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="finite"):
        latents.slerp(u[:1], v[:1], tf.constant([np.nan]))


def test_generator_helpers(tmp_path):
    conditional = make_conditional_run(tmp_path / "run", latent_dim=6)
    unconditional = models.dcgan_generator(16, 1, latent_dim=5, filters=8)
    assert models.is_conditional(conditional) and not models.is_conditional(unconditional)
    assert models.latent_dim(conditional) == 6 and models.latent_dim(unconditional) == 5
