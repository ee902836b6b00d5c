"""Probes of a trained critic, for the analysis figures of the WGAN and WGAN-GP papers.

- ``train_critic``: a critic (or a GAN discriminator) trained alone against a fixed generated
  distribution, as both papers do to show what the optimal critic looks like (WGAN Fig. 2,
  WGAN-GP Fig. 1a). It uses the package's losses, gradient penalty and weight clipping.
- ``input_gradients`` and ``value_surface``: a critic's scores and the norm of their gradient with
  respect to its input, at given points or on a 2-D grid.
- ``layer_gradient_norms``: the norm of the critic loss's gradient with respect to each layer's
  activations (WGAN-GP Fig. 1b, left); ``critic_weights``: every kernel weight (Fig. 1b, right).
"""
import keras
import numpy as np
import tensorflow as tf

from wgan_tf import config, lipschitz, rng
from wgan_tf.gan import GAN
from wgan_tf.wgan import WGAN

OBJECTIVES = ("wasserstein", "gan")
_PENALTY_MIX = 1  # the rng stream of WGAN-GP's mixing factors (as in wgan_tf.wgan)


def default_critic_optimizer(objective="wasserstein", penalty="gp"):
    """The optimizer each paper trains its critic with: RMSProp(5e-5) for weight clipping (WGAN,
    Algorithm 1), Adam(1e-4, 0, 0.9) for the gradient penalty (WGAN-GP, Algorithm 1) and
    Adam(2e-4, 0.5) for a standard GAN's discriminator (DCGAN)."""
    if objective == "gan":
        return keras.optimizers.Adam(**config.DCGAN_ADAM)
    if penalty == "clip":
        return keras.optimizers.RMSprop(**config.PAPER_RMSPROP)
    return keras.optimizers.Adam(**config.GP_ADAM)


def train_critic(critic, real, fake, steps, objective="wasserstein", penalty="gp",
                 optimizer=None, clip_value=0.01, gp_weight=10.0, seed=0):
    """Trains ``critic`` alone for ``steps`` updates, with the generator held fixed: the inner
    maximisation of the WGAN paper (Arjovsky et al. 2017, Algorithm 1 lines 2-8) or of WGAN-GP
    (Gulrajani et al. 2017, Algorithm 1 lines 2-10) run to convergence, as both papers do to
    show the optimal critic (WGAN Fig. 2, WGAN-GP Fig. 1a).

    ``real`` and ``fake`` are iterables of batches (a ``tf.data.Dataset``, say), read in step.
    ``objective`` "wasserstein" trains a critic with ``penalty`` "clip" (``lipschitz.WeightClip``
    at ``clip_value``, put on the critic here), "gp" (``lipschitz.gradient_penalty`` times
    ``gp_weight``) or None; "gan" trains a standard GAN discriminator (``critic`` gives logits).
    ``optimizer`` defaults to that paper's (``default_critic_optimizer``).

    Returns one estimate per update, as the training step reports it (on that update's batch,
    before the update): of W(P_r, P_g) for the Wasserstein objective (``WGAN.estimate``, from
    ``losses.wasserstein_critic_loss``), of JS(P_r, P_g) for the GAN (``GAN.estimate``, from
    ``losses.gan_discriminator_loss``).
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if objective == "gan":
        penalty = None
    if penalty not in ("clip", "gp", None):
        raise ValueError(f"penalty must be 'clip', 'gp' or None, got {penalty!r}")
    if penalty == "clip":
        lipschitz.clip_weights(critic, clip_value)
    model = GAN if objective == "gan" else WGAN
    critic_loss = model.critic_loss
    optimizer = optimizer or default_critic_optimizer(objective, penalty)
    optimizer.build(critic.trainable_variables)

    @tf.function
    def step(real_batch, fake_batch, iteration):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(critic_loss(critic(real_batch, training=True),
                                              critic(fake_batch, training=True)))
            total = loss
            if penalty == "gp":
                mix = rng.uniform([tf.shape(real_batch)[0]], seed, _PENALTY_MIX, iteration)
                total += gp_weight * tf.reduce_mean(
                    lipschitz.gradient_penalty(critic, real_batch, fake_batch, mix))
        grads = tape.gradient(total, critic.trainable_variables)
        optimizer.apply(grads, critic.trainable_variables)  # clipping: the weights' constraint
        return model.estimate(loss)

    estimates = []
    for i, (real_batch, fake_batch) in enumerate(zip(real, fake)):
        if i == steps:
            break
        real_batch = tf.convert_to_tensor(real_batch, tf.float32)
        fake_batch = tf.convert_to_tensor(fake_batch, tf.float32)
        estimates.append(float(step(real_batch, fake_batch, tf.constant(i, tf.int64))))
    if len(estimates) < steps:
        raise ValueError(f"the batches ran out after {len(estimates)} of {steps} steps")
    return np.asarray(estimates)


def input_gradients(critic, points):
    """``(scores [N], gradient norms [N])``: the critic's score at each point and the Euclidean
    norm of its gradient with respect to that point (the quantity WGAN-GP's penalty holds at 1,
    and whose vanishing the WGAN paper's Fig. 2 shows for a saturated discriminator)."""
    points = tf.convert_to_tensor(points, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(points)
        scores = tf.reshape(critic(points, training=False), [-1])
    grads = tape.gradient(scores, points)
    norms = tf.norm(tf.reshape(grads, [tf.shape(grads)[0], -1]), axis=1)
    return scores.numpy(), norms.numpy()


def value_surface(critic, xlim, ylim, resolution=100):
    """A 2-D critic's value surface (WGAN-GP Fig. 1a): ``(xs [resolution], ys [resolution],
    values [resolution, resolution])`` with ``values[i, j]`` the score at ``(xs[j], ys[i])``, the
    layout ``matplotlib``'s ``contour(xs, ys, values)`` takes."""
    xs = np.linspace(*xlim, resolution, dtype=np.float32)
    ys = np.linspace(*ylim, resolution, dtype=np.float32)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    scores = critic.predict(grid, batch_size=4096, verbose=0).reshape(resolution, resolution)
    return xs, ys, scores


def _probed_layers(critic):
    """Every layer with a kernel but the last (the score, whose gradient is the constant 1/B)."""
    kernels = [layer for layer in critic.layers if getattr(layer, "kernel", None) is not None]
    return [layer.name for layer in kernels[:-1]]


def layer_gradient_norms(critic, real, fake, layers=None, objective="wasserstein"):
    """The norm of the gradient of the critic loss (the mean over the batch, without penalty) with
    respect to each layer's activations, on one batch of real and generated samples: WGAN-GP's
    Fig. 1b (Gulrajani et al. 2017, Sec. 3.2), where weight clipping makes it grow or decay
    exponentially with depth.

    ``layers`` are layer names of the functional ``critic`` (default: every layer with a kernel
    but the score layer, input side first). Returns ``{name: norm}`` in that order; a layer's
    norm is the Frobenius norm over the whole batch of its output's gradient.
    """
    names = list(layers) if layers is not None else _probed_layers(critic)
    probe = keras.Model(critic.inputs, [critic.get_layer(n).output for n in names] +
                        list(critic.outputs))
    critic_loss = (GAN if objective == "gan" else WGAN).critic_loss
    batch = tf.concat([tf.convert_to_tensor(x, tf.float32) for x in (real, fake)], axis=0)
    num_real = len(real)
    with tf.GradientTape() as tape:
        *activations, scores = probe(batch, training=False)
        loss = tf.reduce_mean(critic_loss(scores[:num_real], scores[num_real:]))
    grads = tape.gradient(loss, activations)
    return {name: float(tf.norm(tf.reshape(g, [-1]))) for name, g in zip(names, grads)}


def critic_weights(critic):
    """Every kernel weight of the critic, flattened (biases and normalisation scales left out):
    the histogram of WGAN-GP's Fig. 1b, right, where weight clipping piles them at +-c."""
    return np.concatenate([layer.kernel.numpy().ravel() for layer in critic.layers
                           if getattr(layer, "kernel", None) is not None])


def estimate(critic, real, fake, objective="wasserstein"):
    """The critic's estimate on given samples, as the training step computes it from the critic
    loss: of W(P_r, P_g) (``WGAN.estimate``; times the Lipschitz constant under clipping) or, for a
    GAN discriminator, of JS(P_r, P_g) (``GAN.estimate``). ``real`` and ``fake`` are arrays of
    equal size; use large held-out samples to read off a
    trained critic's value without the noise of one training batch."""
    if len(real) != len(fake):
        raise ValueError(f"estimate needs samples of equal size, got {len(real)} and {len(fake)}")
    model = GAN if objective == "gan" else WGAN
    real_scores = critic.predict(np.asarray(real, np.float32), batch_size=4096, verbose=0)
    fake_scores = critic.predict(np.asarray(fake, np.float32), batch_size=4096, verbose=0)
    return float(model.estimate(tf.reduce_mean(model.critic_loss(real_scores, fake_scores))))
