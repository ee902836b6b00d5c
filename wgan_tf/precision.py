"""Mixed precision (``--precision``): compute in bfloat16 or float16, keep float32 where it counts.

``float32`` is the paper's and the default. ``bfloat16`` and ``float16`` build the networks under
Keras' ``mixed_bfloat16`` / ``mixed_float16`` dtype policies: layers compute in the low precision
on float32 variables (Keras casts the weights at each use), while the networks' outputs (the
generator's tanh images, the critic's score), batch norm and layer norm (Keras upcasts them) stay
float32. So the losses, the critic's score and Wasserstein estimate, the gradient penalty's norm and
every metric are float32, and the optimizers update float32 weights.

float16 has 5 exponent bits: small gradients underflow to zero. It trains with dynamic loss scaling
(``LossScale``): every gradient is taken with the upstream gradient S instead of 1 (the gradient of
S * loss, so every intermediate gradient is scaled) and divided by S in float32 before the update;
a step whose gradients are not finite is skipped (weights, optimizer state and its iteration count
unchanged) and S halved; S doubles after 2,000 finite steps in a row. S and that count are
variables of the model, checkpointed, so a resumed run continues with the same scale. WGAN-GP
takes a gradient *inside* its loss, the critic's input gradient; that one is scaled too
(``gradient``), or it underflows (or the loss scale collapses) exactly where GAN libraries have
turned NaN with mixed precision (tensorflow#48662, StudioGAN #175). bfloat16 has float32's
exponent range and needs no scaling.

Why not Keras' ``LossScaleOptimizer``: under MirroredStrategy on CPU devices (TF 2.21, Keras
3.15) its ``apply`` fails ("No gradients provided for any variable", in the ``cond`` it runs in
cross-replica context), and it decides to skip from one replica's gradients. Here replicas agree
first (``agree_on_finite``), and a skipped update is a ``cond`` inside each variable's own update
(``skip_non_finite``), where no cross-replica call happens.
"""
import contextlib

import keras
import tensorflow as tf

from wgan_tf.config import PRECISIONS
from wgan_tf.errors import ConfigError

_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def check(precision):
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


@contextlib.contextmanager
def policy(precision):
    """Networks built inside compute in ``precision`` (Keras' global dtype policy, restored
    after)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(_POLICIES[check(precision)])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


class LossScale:
    """Dynamic loss scaling of one optimizer (float16 training). Its two variables belong to
    ``model`` (``model.add_weight``, the same on every replica)."""

    INITIAL = 2.0 ** 15
    GROWTH_STEPS = 2000

    def __init__(self, model, name, optimizer):
        self.optimizer = skip_non_finite(optimizer)
        self.scale = model.add_weight(
            name=f"{name}_loss_scale", shape=(), dtype="float32", trainable=False,
            initializer=keras.initializers.Constant(self.INITIAL),
            aggregation="only_first_replica")
        self.finite_steps = model.add_weight(
            name=f"{name}_finite_steps", shape=(), dtype="int64", trainable=False,
            initializer="zeros", aggregation="only_first_replica")

    def variables(self):
        return {"scale": self.scale, "finite_steps": self.finite_steps}

    def minimize(self, tape, loss, variables):
        """One update down ``loss`` (recorded on ``tape``), skipped if its gradients are not
        finite on any replica; then the scale's update. Returns whether the update was made."""
        scale = self.scale.value
        grads = agree_on_finite(gradient(tape, loss, variables, scale))
        finite = tf.reduce_all(tf.math.is_finite(grads[0]))  # the same for every gradient
        self.optimizer.apply(grads, variables)
        # A skipped update must not count: Adam's bias correction and schedules read it.
        self.optimizer.iterations.assign_sub(tf.cast(tf.logical_not(finite), "int64"))
        steps = tf.where(finite, self.finite_steps.value + 1, tf.constant(0, tf.int64))
        grow = steps >= self.GROWTH_STEPS
        self.scale.assign(tf.where(finite, tf.where(grow, 2.0 * scale, scale), 0.5 * scale))
        self.finite_steps.assign(tf.where(grow, tf.constant(0, tf.int64), steps))
        return finite


def gradient(tape, target, sources, loss_scale=None):
    """``tape.gradient(target, sources)``; with a ``loss_scale``, backpropagated from
    ``loss_scale`` instead of 1 (the gradient of ``loss_scale * target``: every intermediate
    gradient is scaled) and divided back in float32."""
    if loss_scale is None:
        return tape.gradient(target, sources)
    upstream = tf.fill(tf.shape(target), tf.cast(loss_scale, target.dtype))
    grads = tape.gradient(target, sources, output_gradients=upstream)
    return tf.nest.map_structure(lambda g: tf.cast(g, tf.float32) / loss_scale, grads)


def agree_on_finite(grads):
    """The gradients, or all NaN on every replica when any replica's are not all finite: the
    decision to skip a step is then the same everywhere."""
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        bad = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(~finite, tf.float32))
        finite = bad == 0
    return [tf.where(finite, g, tf.constant(float("nan"), g.dtype)) for g in grads]


def skip_non_finite(optimizer):
    """``optimizer``, whose update of a variable is skipped where its gradient is not finite
    (with ``agree_on_finite`` gradients: every variable or none). It wraps the instance's
    ``update_step``, which Keras calls per variable inside its distributed update, where a
    ``cond`` holds no cross-replica call."""
    if getattr(optimizer, "_skips_non_finite", False):
        return optimizer
    update = optimizer.update_step

    def update_step(gradient, variable, learning_rate):
        def apply():
            update(gradient, variable, learning_rate)
            return tf.constant(True)
        tf.cond(tf.reduce_all(tf.math.is_finite(gradient)), apply, lambda: tf.constant(False))

    optimizer.update_step = update_step
    optimizer._skips_non_finite = True
    return optimizer


def float32_copy(network):
    """``network`` rebuilt to compute in float32 with the same weights (what export serves: a
    network trained in bfloat16 or float16 keeps the float32 signatures)."""
    if all(layer.dtype_policy.name == "float32" for layer in network.layers):
        return network
    with policy("float32"):
        copy = keras.models.clone_model(network, clone_function=_float32_layer)
    copy.set_weights(network.get_weights())
    return copy


def _float32_layer(layer):
    config = layer.get_config()
    config["dtype"] = "float32"
    return layer.__class__.from_config(config)
