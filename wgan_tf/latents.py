"""Latent vectors from seeds, inside the graph: what the served signatures draw and walk.

Every function is a pure function of its inputs, row by row: row i depends on row i's seed (and
truncation, fraction) alone, so a seed gives the same latent alone or in any batch, on TF Serving
and on the Python server alike. Only graph ops are used (``tensorflow_model_server`` runs the
graph without Python), and nothing here may be XLA-compiled: XLA's CPU kernels turn the same
Philox bits into other floats when the seed is a runtime tensor (measured with TF 2.21).

- ``from_seeds``: N(0, 1), the latent of ``from_seeds``.
- ``truncated_from_seeds``: the truncation trick of BigGAN (Brock et al. 2019, section 3.1): the
  latent drawn from the normal truncated to [-psi, psi], "values which fall outside a range are
  resampled to fall inside that range". Not ``z / psi`` nor ``psi * z``, and not clipping: those
  change the distribution's shape (the division was PyTorch-StudioGAN's bug, issue #62, fixed
  with ``scipy.stats.truncnorm.rvs(-psi, psi)``).
- ``slerp``: the spherical interpolation between two latents (Shoemake 1985; for GAN latents
  White 2016, "Sampling Generative Networks"), which keeps an interpolated Gaussian latent at the
  norm the generator was trained on, where the straight line passes near the origin.
"""
import math

import tensorflow as tf


def from_seeds(seeds, latent_dim):
    """One N(0, 1) latent vector per int64 seed: row i depends on ``seeds[i]`` alone.

    ``alg="philox"`` pins the generator (``auto_select`` may change with the device). TF's normal
    is Box-Muller on a uniform floored at 1e-7, so no coordinate exceeds sqrt(-2 ln 1e-7) = 5.68
    in magnitude.
    """
    def one(seed):
        return tf.random.stateless_normal([latent_dim], seed=tf.stack([seed, tf.zeros_like(seed)]),
                                          alg="philox")
    return tf.map_fn(one, seeds, fn_output_signature=tf.TensorSpec([latent_dim], tf.float32))


def truncated_from_seeds(seeds, truncation, latent_dim):
    """The latent of each seed with every coordinate outside [-psi, psi] resampled inside it:
    float32 ``[B, latent_dim]`` for int64 ``seeds`` ``[B]`` and float32 ``truncation`` ``[B]``
    (psi per row; any psi >= 0, +inf included; negative or NaN is InvalidArgumentError).

    A coordinate of ``from_seeds``'s latent that is inside the bound is kept; one outside is
    replaced by a draw from the truncated normal by its inverse CDF, from a second uniform of the
    same seed: ``ndtri(Phi(-psi) + u (1 - 2 Phi(-psi)))``, in float64. Together this is exactly the
    truncated normal (keep z ~ N(0, 1) if |z| <= psi, else an independent truncated draw: the
    density is N(x) on the bound plus P(|z| > psi) N(x) / P(|z| <= psi), i.e. N(x) / P(|z| <= psi)),
    with two draws a coordinate, no rejection loop and no fallback. It also means a truncated
    image is its seed's untruncated image with only the outlying coordinates changed: psi >= 6
    changes none (see ``from_seeds``), so it is ``from_seeds``'s image bit for bit; psi = 0 is the
    limit of the truncated normal, the zero latent (the mean).
    """
    psi = tf.convert_to_tensor(truncation, tf.float32)
    check = tf.debugging.Assert(tf.reduce_all(psi >= 0.0),  # NaN fails too
                                ["truncation (psi) must be >= 0 (0: the mean latent; 6 or more: "
                                 "no truncation), got", psi])
    with tf.control_dependencies([check]):
        z = from_seeds(seeds, latent_dim)
    psi = psi[:, None]

    def uniform(seed):
        return tf.random.stateless_uniform([latent_dim], seed=tf.stack([seed, tf.ones_like(seed)]),
                                           dtype=tf.float64, alg="philox")
    u = tf.map_fn(uniform, seeds, fn_output_signature=tf.TensorSpec([latent_dim], tf.float64))
    bound = tf.cast(psi, tf.float64)
    low = 0.5 * tf.math.erfc(bound / math.sqrt(2.0))  # Phi(-psi), without cancellation
    resampled = tf.math.ndtri(low + u * (1.0 - 2.0 * low))
    # The clip only catches round-off at the bound (ndtri(1) = inf where Phi(psi) rounds to 1);
    # rounding a float64 at most psi to float32 cannot exceed psi, which is a float32.
    resampled = tf.cast(tf.clip_by_value(resampled, -bound, bound), tf.float32)
    return tf.where(tf.abs(z) <= psi, z, resampled)


def slerp(a, b, t):
    """The point at fraction ``t`` (float32 ``[B]``) of the great-circle path from ``a`` to ``b``
    (float32 ``[B, D]``), with the norm interpolated along: ``sin((1-t) w)/sin w a + sin(t w)/sin w
    b``, w the angle between them. Where a and b are (anti)parallel, within 1e-6 in sin w, the arc
    is undefined and this is the straight line. ``t = 0`` gives ``a`` and ``t = 1`` gives ``b``
    exactly, by construction, whatever the round-off of the sines.
    """
    t = tf.convert_to_tensor(t, tf.float32)
    check = tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(t)),
                                ["the interpolation fraction t must be a finite number, got", t])
    with tf.control_dependencies([check]):
        t = tf.identity(t)[:, None]
    cosine = tf.reduce_sum(tf.math.l2_normalize(a, axis=1) * tf.math.l2_normalize(b, axis=1),
                           axis=1, keepdims=True)
    omega = tf.acos(tf.clip_by_value(cosine, -1.0, 1.0))
    sine = tf.sin(omega)
    arc = (tf.sin((1.0 - t) * omega) * a + tf.sin(t * omega) * b) / tf.maximum(sine, 1e-6)
    line = (1.0 - t) * a + t * b
    path = tf.where(sine > 1e-6, arc, line)
    return tf.where(t == 0.0, a, tf.where(t == 1.0, b, path))
