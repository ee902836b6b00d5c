"""The two ways of keeping the critic (approximately) 1-Lipschitz.

- Weight clipping, WGAN (Arjovsky, Chintala, Bottou 2017, Algorithm 1 line 7): every critic weight
  is kept in [-c, c]. Implemented as a Keras constraint, which the optimizer applies right after each
  update, so no weight is ever outside the box when the critic is evaluated.
- Gradient penalty, WGAN-GP (Gulrajani et al. 2017, Algorithm 1 lines 6-7): (||grad f(x_hat)|| - 1)^2
  at random points x_hat between real and generated samples.
"""
import keras
import tensorflow as tf

from wgan_tf import precision


@keras.saving.register_keras_serializable(package="wgan_tf")
class WeightClip(keras.constraints.Constraint):
    """Clips a weight to [-clip_value, clip_value]."""

    def __init__(self, clip_value=0.01):
        self.clip_value = float(clip_value)

    def __call__(self, w):
        return keras.ops.clip(w, -self.clip_value, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}


def clip_weights(model, clip_value):
    """Puts every trainable weight of ``model`` (batch-norm scale and offset included) under a
    ``WeightClip`` constraint and clips it now, so the first critic evaluation is inside the box too.

    Moving batch-norm statistics are not weights of the critic function being optimised and are
    not clipped, as in the reference code (it clamps ``netD.parameters()``).
    """
    constraint = WeightClip(clip_value)
    for variable in model.trainable_variables:
        variable.constraint = constraint
        variable.assign(constraint(variable))


def interpolate(real, fake, uniform):
    """x_hat = u * real + (1 - u) * fake, one factor ``u`` in [0, 1] per sample (shape [B])."""
    u = tf.reshape(uniform, [-1] + [1] * (real.shape.rank - 1))
    return u * real + (1.0 - u) * fake


def gradient_penalty(critic, real, fake, uniform, epsilon=1e-12, loss_scale=None, target=1.0):
    """WGAN-GP's penalty per sample, (||d critic(x_hat) / d x_hat||_2 - 1)^2, shape [B], in float32.

    ``target`` 0: the zero-centred penalty ||d critic(x_hat) / d x_hat||^2 (Thanh-Tung et al.
    2019, "Improving generalization and stability of GANs"), which pulls the critic towards the
    flat function rather than towards slope 1 everywhere between the two sets.

    ``epsilon`` inside the square root keeps the norm's gradient finite where the critic's input
    gradient is exactly zero (sqrt has an infinite slope at 0, which would give NaN weights).
    ``loss_scale`` (float16 training): the input gradient is taken of the scaled scores and
    unscaled, so that it does not underflow in float16 (``wgan_tf.precision``).
    """
    x_hat = interpolate(tf.cast(real, tf.float32), tf.cast(fake, tf.float32), uniform)
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        scores = critic(x_hat, training=True)
    grads = tf.cast(precision.gradient(tape, scores, x_hat, loss_scale), tf.float32)
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=list(range(1, grads.shape.rank)))
                    + epsilon)
    return tf.square(norms - target)
