"""The package's own arithmetic for batch norm (wgan_tf.batchnorm) and the bfloat16 filter gradient
(wgan_tf.convolution) against Keras's layers: the same values, to round-off."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from wgan_tf import convolution, distribute, precision
from wgan_tf.models import BatchNormalization


def _relative(a, b):
    a, b = (tf.cast(t, tf.float32).numpy() for t in (a, b))
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("precision_name", ["float32", "bfloat16"])
def test_batch_norm_computes_keras_synchronized_batch_norm(precision_name):
    """Training mode: the output, the input's and the scale's and offset's gradients (through the
    batch's moments too) and the moving statistics of Keras's synchronized batch norm; inference
    mode: its output."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((16, 8, 8, 12)).astype("float32") * 3 + 1)
    weights = tf.constant(rng.standard_normal((16, 8, 8, 12)).astype("float32"))
    with precision.policy(precision_name):
        ours = BatchNormalization(momentum=0.9, epsilon=1e-5, gamma_initializer="random_normal",
                                  beta_initializer="random_normal")
        theirs = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=True)
    ours.build(x.shape)
    theirs.build(x.shape)
    theirs.set_weights(ours.get_weights())
    inputs = tf.cast(x, ours.compute_dtype)
    results = []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            y = tf.cast(layer(inputs, training=True), tf.float32)
            loss = tf.reduce_sum(y * weights + 0.1 * y ** 2)
        results.append([y, *tape.gradient(loss, [inputs, layer.gamma, layer.beta]),
                        layer.moving_mean, layer.moving_variance, layer(inputs, training=False)])
    tolerance = 1e-5 if precision_name == "float32" else 1e-2  # bfloat16: 8 bits of mantissa
    for name, a, b in zip(["y", "dx", "dgamma", "dbeta", "moving mean", "moving variance",
                           "inference"], *results):
        assert _relative(a, b) < tolerance, name


@pytest.mark.parametrize("kind,padding,strides,shape", [
    ("conv", "same", 2, (8, 8, 32)), ("conv", "valid", 1, (4, 4, 64)),
    ("conv", "same", 2, (16, 16, 8)), ("conv", "same", 1, (8, 8, 8)),
    ("conv", "valid", 2, (9, 9, 8)),
    ("transpose", "same", 2, (4, 4, 64)), ("transpose", "valid", 1, (1, 1, 16)),
    ("transpose", "same", 2, (8, 8, 8))])
def test_the_bfloat16_filter_gradient_as_a_convolution_is_tensorflows(kind, padding, strides,
                                                                      shape):
    """Where the filter gradient is the package's convolution (bfloat16 on a CPU, an output of at
    most 8x8 positions), the forward pass and the input gradient are TensorFlow's own, bit for
    bit, and the filter gradient equals TensorFlow's to bfloat16's round-off."""
    with precision.policy("bfloat16"):
        ours = (convolution.Conv2D if kind == "conv" else convolution.Conv2DTranspose)(
            16, 4, strides=strides, padding=padding, use_bias=False)
        theirs = (layers.Conv2D if kind == "conv" else layers.Conv2DTranspose)(
            16, 4, strides=strides, padding=padding, use_bias=False)
    x = tf.random.normal([8, *shape], seed=1)
    ours.build(x.shape)
    theirs.build(x.shape)
    theirs.set_weights(ours.get_weights())
    out_positions = (ours.compute_output_shape(x.shape) if kind == "conv" else x.shape)[1:3]
    assert convolution.own_gradient_pays(tf.bfloat16, out_positions[0] * out_positions[1])
    results = []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.cast(layer(x), tf.float32)
            loss = tf.reduce_sum(y ** 2)
        results.append([y, *tape.gradient(loss, [x, layer.kernel])])
    (y, dx, dk), (y_ref, dx_ref, dk_ref) = results
    np.testing.assert_array_equal(y.numpy(), y_ref.numpy())
    np.testing.assert_array_equal(dx.numpy(), dx_ref.numpy())
    assert _relative(dk, dk_ref) < 1e-2


@pytest.mark.parametrize("precision_name,strides", [("bfloat16", 1), ("bfloat16", 2),
                                                    ("float16", 1), ("float32", 1)])
def test_the_projection_of_a_1x1_input_is_kerass_transposed_convolution(precision_name, strides):
    """A transposed convolution of a 1x1 input with VALID padding (the DCGAN generator's first
    layer, latent -> 4x4) is computed as a matrix product: Keras's output, input gradient and
    kernel gradient, to round-off."""
    with precision.policy(precision_name):
        ours = convolution.Conv2DTranspose(32, 4, strides=strides, padding="valid",
                                           use_bias=False)
        theirs = layers.Conv2DTranspose(32, 4, strides=strides, padding="valid", use_bias=False)
    x = tf.random.normal([8, 1, 1, 20], seed=2)
    ours.build(x.shape)
    theirs.build(x.shape)
    theirs.set_weights(ours.get_weights())
    results = []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.cast(layer(x), tf.float32)
            loss = tf.reduce_sum(y ** 2 + y)
        results.append([y, *tape.gradient(loss, [x, layer.kernel])])
    assert results[0][0].shape == (8, 4, 4, 32)
    tolerance = 1e-5 if precision_name == "float32" else 1e-2
    for name, a, b in zip(["y", "dx", "dkernel"], *results):
        assert _relative(a, b) < tolerance, name


def test_the_own_gradient_is_used_only_where_it_was_measured_faster():
    assert not convolution.own_gradient_pays(tf.float32, 16)
    assert not convolution.own_gradient_pays(tf.bfloat16, 256)
    on_cpu = not tf.config.list_physical_devices("GPU")
    assert convolution.own_gradient_pays(tf.bfloat16, 64) == on_cpu
    layer = convolution.Conv2D(8, 4, strides=2, padding="same")
    assert isinstance(keras.layers.deserialize(keras.layers.serialize(layer)), convolution.Conv2D)


def _batch_norm_on(strategy, precision_name, x, upstream):
    """(output, input gradient, scale gradient, moving mean, moving variance) of one training-mode
    step of the package's batch norm on ``x`` under ``strategy`` (its replicas split the rows)."""
    with strategy.scope(), precision.policy(precision_name):
        layer = BatchNormalization(
            momentum=0.9, epsilon=1e-5, synchronized=True,
            gamma_initializer=keras.initializers.RandomNormal(1.0, 0.5, seed=1),
            beta_initializer=keras.initializers.RandomNormal(0.0, 0.5, seed=2))
        layer.build(x.shape)

    @tf.function
    def step(xs, ws):
        def replica(x_rows, w_rows):
            with tf.GradientTape() as tape:
                x_rows = tf.cast(x_rows, layer.compute_dtype)
                tape.watch(x_rows)
                y = tf.cast(layer(x_rows, training=True), tf.float32)
                loss = tf.reduce_sum(y * w_rows)
            dx, dgamma = tape.gradient(loss, [x_rows, layer.gamma])
            return y, tf.cast(dx, tf.float32), dgamma
        return strategy.run(replica, args=(xs, ws))

    batches = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors((x, upstream)))
    y, dx, dgamma = (strategy.experimental_local_results(t) for t in step(*next(iter(batches))))
    return (np.concatenate([t.numpy() for t in y]), np.concatenate([t.numpy() for t in dx]),
            sum(t.numpy() for t in dgamma), layer.moving_mean.numpy(),
            layer.moving_variance.numpy())


@pytest.mark.parametrize("precision_name", ["float32", "bfloat16"])
def test_one_replica_and_two_compute_the_same_batch_norm(precision_name):
    """Issue 25: one replica and two (MirroredStrategy over the two logical CPU devices) compute
    batch norm by one arithmetic. On data whose sums are exact (small integers), where only a
    difference of formula can show, the output and the moving statistics are bit for bit the
    same and the gradients agree to float32's round-off. (Before, one replica ran TensorFlow's
    fused kernel and two Keras's synchronized path: measured here, 92 % of the float32 outputs
    differed, by up to 2e-6, and the input gradients by up to 3e-6.)"""
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, (16, 8, 8, 32)).astype(np.float32)
    upstream = rng.integers(-2, 3, (16, 8, 8, 32)).astype(np.float32)
    # The package's strategies (one per device set and process: collective ops of two
    # MirroredStrategy objects in one process would share instance keys).
    one = _batch_norm_on(distribute.make_strategy(1), precision_name, x, upstream)
    two = _batch_norm_on(distribute.make_strategy(2), precision_name, x, upstream)
    for name, a, b in zip(["output", "moving mean", "moving variance"],
                          [one[0], *one[3:]], [two[0], *two[3:]]):
        np.testing.assert_array_equal(a, b, err_msg=name)
    for name, a, b in zip(["input gradient", "scale gradient"], one[1:3], two[1:3]):
        assert np.abs(a - b).max() <= 5e-7 * np.abs(a).max(), name


def test_the_filter_gradient_of_unknown_spatial_sizes_is_tensorflows():
    """Traced without spatial sizes (as a gradient of a gradient may be), ``filter_gradient``
    falls back to TensorFlow's op and still computes the same gradient."""
    x = tf.cast(tf.random.normal([4, 8, 8, 6], seed=2), tf.bfloat16)
    dy = tf.cast(tf.random.normal([4, 4, 4, 5], seed=3), tf.bfloat16)
    traced = tf.function(lambda a, b: convolution.filter_gradient(a, b, (4, 4), [2, 2], "SAME"),
                         input_signature=[tf.TensorSpec([None, None, None, 6], tf.bfloat16),
                                          tf.TensorSpec([None, None, None, 5], tf.bfloat16)])
    known = convolution.filter_gradient(x, dy, (4, 4), [2, 2], "SAME")
    assert _relative(traced(x, dy), known) < 1e-2
