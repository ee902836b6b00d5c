"""Batch normalisation of NHWC activations by one arithmetic on one replica and on several.

Training mode (``normalize_batch``) normalises with the moments of the *global* batch, as
synchronized batch norm does, so that ``--devices N`` computes one device's step:

- moments: per-channel float32 sums of x and x^2 over this replica's rows (as matrix-vector
  products with a row of ones: TensorFlow's reduction over the batch and spatial axes took
  twice as long), all-reduced across replicas (nothing to reduce on one), then mean = S1 / n and variance = S2 / n - mean^2 (the
  batch's biased variance, as Keras's synchronized batch norm computes it);
- normalisation: TensorFlow's fused kernel in inference mode with those moments, one oneDNN
  primitive that takes a bfloat16 activation as it is, with float32 scale, offset and moments;
- gradient: the fused kernel's inference-mode gradient (dy * scale / sigma, and the scale's and
  offset's gradients), the moments' gradients from those, through the all-reduce by autodiff, and
  the sums' own, d/dx = dS1 + 2 x dS2, in one pass (``_sums``), as for any synchronized batch
  norm.

One replica differs from several only in the order of the additions inside the sums: round-off.
(TensorFlow's fused kernel in training mode would be one pass, but its moments are its own replica's,
and on several replicas Keras's synchronized path computes another formula in float32: the two
drifted apart, issue 25.)
"""
import tensorflow as tf


def _replicas():
    context = tf.distribute.get_replica_context()
    return context if context is not None and context.num_replicas_in_sync > 1 else None


def _global_sum(values):
    """Per-channel sums over the global batch: ``values`` summed across replicas."""
    context = _replicas()
    return values if context is None else context.all_reduce(tf.distribute.ReduceOp.SUM, values)


def _count(x):
    """Elements per channel in the global batch (replicas hold equal shares)."""
    context = _replicas()
    local = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
    return local if context is None else local * context.num_replicas_in_sync


def _fused(x, scale, offset, mean, variance, epsilon):
    return tf.raw_ops.FusedBatchNormV3(x=x, scale=scale, offset=offset, mean=mean,
                                       variance=variance, epsilon=epsilon, data_format="NHWC",
                                       is_training=False)


def _scale_and_shift(x, a, b):
    """x * a + b per channel (float32 a and b) in one pass: the fused kernel with zero mean and
    unit variance. (Autodiff computed the sums' gradient in float32 element-wise passes, a Tile
    among them: a batch norm layer's forward and backward took 10-50 % longer on the DCGAN's
    bfloat16 shapes, benchmarks/layer_kernels.py.)"""
    channels = x.shape[-1]
    return _fused(x, a, b, tf.zeros([channels]), tf.ones([channels]), 0.0).y


@tf.custom_gradient
def _sums(x):
    """[sum x, sum x^2] per channel in float32 over this replica's rows."""
    rows = tf.reshape(tf.cast(x, tf.float32), [-1, x.shape[-1]])
    ones = tf.ones([1, tf.shape(rows)[0]])
    sums = tf.concat([tf.matmul(ones, rows), tf.matmul(ones, tf.square(rows))], 0)

    def gradient(dsums):
        return _scale_and_shift(x, 2.0 * dsums[1], dsums[0])

    return sums, gradient


def normalize(x, scale, offset, mean, variance, epsilon):
    """(x - mean) / sqrt(variance + epsilon) * scale + offset by the fused kernel, differentiable
    in every input, the moments included (the kernel's own inference-mode gradient is not)."""

    @tf.custom_gradient
    def forward(x, scale, offset, mean, variance):
        outputs = _fused(x, scale, offset, mean, variance, epsilon)

        def gradient(dy):
            # dx = dy * scale / sigma, dscale = sum(dy * x_hat), doffset = sum(dy): this replica's.
            dx, dscale, doffset, _, _ = tf.raw_ops.FusedBatchNormGradV3(
                y_backprop=dy, x=x, scale=scale, reserve_space_1=mean,
                reserve_space_2=variance, reserve_space_3=outputs.reserve_space_3,
                epsilon=epsilon, data_format="NHWC", is_training=False)
            inverse = tf.math.rsqrt(variance + epsilon)
            return (dx, dscale, doffset, -scale * inverse * doffset,
                    -0.5 * scale * dscale * tf.square(inverse))

        return outputs.y, gradient

    return forward(x, scale, offset, mean, variance)


def normalize_batch(x, scale, offset, epsilon):
    """(y, mean, variance): ``x`` normalised with its global batch's moments (float32), and those
    moments. Differentiable: the moments' gradient reaches every replica's rows through the
    all-reduce, as synchronized batch norm's does.

    The moments come from float32 sums of x and x^2 (a cast and three passes), not from the
    fused kernel in training mode (one pass, 5 % faster for the bfloat16 DCGAN step) nor with a
    one-pass gradient by the fused kernel: in both, oneDNN's arithmetic on 64 rows and on two
    halves of 32 differs in the last bit, and one device and two drifted apart again (0.73-0.76 %
    of the critic's weights by more than 1e-5 after the first iteration's 100 critic updates,
    against 0.02 % from the sums; tests/test_precision.py)."""
    count = _count(x)
    sums = _global_sum(_sums(x))
    mean = sums[0] / count
    variance = tf.maximum(sums[1] / count - tf.square(mean), 0.0)
    return normalize(x, scale, offset, mean, variance, epsilon), mean, variance
