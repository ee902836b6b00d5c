"""Convolution layers whose filter gradient is a forward convolution where oneDNN's own is slow.

TensorFlow's bfloat16 filter gradient (Conv2DBackpropFilter, oneDNN's ``jit_bf16`` backward-weights
kernel) is slow on a CPU without AMX when the output has few positions and many channels: side by
side with the forward convolution of the same layer (batch 64, 4x4 kernels, stride 2; AMD EPYC,
AVX512-BF16), 16x16x128 -> 8x8x256 took 21 ms against 10 ms forward, 8x8x256 -> 4x4x512 35 ms
against 9 (slower than its float32 twin, 24 ms). The filter gradient is a convolution too (of the
input, batch and channels swapped, by the output's gradient, dilated by the stride:
``filter_gradient``), and oneDNN's forward kernel computes it in 13-15 ms there. (The first
version of this module wrote it at 4x4 as image patches times the output gradient, a matrix
product: 15-16 ms, 21-31 ms at 8x8.) At 16x16 positions and more TensorFlow's own kernel is the
faster (14-16 against 17-19 ms), and in float32 too, so there, on GPUs and in float32 the layers
are Keras's own, unchanged (``benchmarks/layer_kernels.py`` measures the three side by side by
layer; docs/BENCHMARKS.md, "The filter gradient as a forward convolution").

A transposed convolution of a 1x1 input (the DCGAN generator's projection of the latent to 4x4) is
a matrix product, and computed as one in every precision (``Conv2DTranspose._project``).

Otherwise only the filter gradient changes: the forward pass and the input gradient are
TensorFlow's usual ops, so the served signatures and the gradient penalty's second derivatives
are unaffected, and one replica and several compute the same arithmetic.
"""
import keras
import tensorflow as tf
from keras import layers

# The filter gradient is a forward convolution when the output it is taken against has at most
# this many positions (8x8): measured faster there only (at 16x16 oneDNN's own kernel wins).
MAX_POSITIONS = 64


def _on_cpu():
    return not tf.config.list_physical_devices("GPU")


def own_gradient_pays(dtype, out_positions):
    """Whether the filter gradient is computed by ``filter_gradient``: bfloat16 on a CPU, few
    positions."""
    return dtype == tf.bfloat16 and out_positions <= MAX_POSITIONS and _on_cpu()


def _same_padding(size, out_size, kernel, stride):
    """TensorFlow's SAME padding of one spatial axis: (before, after)."""
    total = max((out_size - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def filter_gradient(inputs, out_backprop, kernel_size, strides, padding):
    """d loss / d filter of ``conv2d(inputs, filter, strides, padding)`` given the output's
    gradient ``out_backprop``: ``[kh, kw, c_in, c_out]``.

    dW[a, b, c, o] = sum over n, i, j of x[n, s*i + a, s*j + b, c] * dy[n, i, j, o] is itself a
    forward convolution, of the input with its batch and channel axes swapped ([c_in, H, W, N]) by
    the output gradient as the filter ([Ho, Wo, N, c_out]), dilated by the stride, with an output
    of kh x kw positions, ``c_in`` images of them, which oneDNN's forward kernel runs at nearly its
    forward rate (see the module's docstring)."""
    kh, kw = kernel_size
    (sh, sw), (ho, wo) = strides, out_backprop.shape[1:3]
    if None in (*inputs.shape[1:3], ho, wo):  # spatial sizes unknown when traced: TensorFlow's op
        return tf.raw_ops.Conv2DBackpropFilter(
            input=inputs, filter_sizes=[kh, kw, inputs.shape[-1], out_backprop.shape[-1]],
            out_backprop=out_backprop, strides=[1, sh, sw, 1], padding=padding.upper())
    if padding.upper() == "SAME":
        inputs = tf.pad(inputs, [[0, 0], _same_padding(inputs.shape[1], ho, kh, sh),
                                 _same_padding(inputs.shape[2], wo, kw, sw), [0, 0]])
    # The rows and columns the convolution reads (VALID drops what a stride leaves over).
    inputs = inputs[:, :(ho - 1) * sh + kh, :(wo - 1) * sw + kw, :]
    product = tf.nn.conv2d(tf.transpose(inputs, [3, 1, 2, 0]),
                           tf.transpose(out_backprop, [1, 2, 0, 3]), 1, "VALID",
                           dilations=[sh, sw])
    return tf.transpose(product, [1, 2, 0, 3])


def input_gradient(out_backprop, kernel, input_shape, kernel_size, strides, padding):
    """d loss / d input of ``conv2d(input, kernel, strides, padding)`` (TensorFlow's op), itself
    differentiable with ``filter_gradient``: the gradient penalty differentiates the
    critic's input gradient again, and its derivative with respect to the filter is that same
    filter gradient, of the penalty's gradient against the score's."""

    @tf.custom_gradient
    def backprop(dy, w):
        dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=input_shape, filter=w, out_backprop=dy,
                                            strides=[1, *strides, 1], padding=padding)

        def gradient(g):
            with tf.name_scope("input_gradient_gradient"):
                return (tf.nn.conv2d(g, w, strides, padding),
                        filter_gradient(g, dy, kernel_size, strides, padding))
        return dx, gradient

    return backprop(out_backprop, kernel)


def _positions(shape):
    return shape[1] * shape[2]


@keras.saving.register_keras_serializable(package="wgan_tf")
class Conv2D(layers.Conv2D):
    """``keras.layers.Conv2D`` (NHWC, no dilation or groups) whose filter gradient is
    ``filter_gradient`` where ``own_gradient_pays``."""

    def convolution_op(self, inputs, kernel):
        output_shape = self.compute_output_shape(inputs.shape)
        if (self.data_format != "channels_last" or self.groups != 1
                or tuple(self.dilation_rate) != (1, 1) or None in output_shape[1:3]
                or not own_gradient_pays(inputs.dtype, _positions(output_shape))):
            return super().convolution_op(inputs, kernel)
        strides, padding = list(self.strides), self.padding.upper()

        kernel_size = self.kernel_size

        @tf.custom_gradient
        def convolve(x, w):
            def gradient(dy):
                with tf.name_scope("conv_gradient"):
                    return (input_gradient(dy, w, tf.shape(x), kernel_size, strides, padding),
                            filter_gradient(x, dy, kernel_size, strides, padding))
            return tf.nn.conv2d(x, w, strides, padding), gradient

        return convolve(inputs, tf.convert_to_tensor(kernel))


@keras.saving.register_keras_serializable(package="wgan_tf")
class Conv2DTranspose(layers.Conv2DTranspose):
    """``keras.layers.Conv2DTranspose`` (NHWC, no bias, dilation or output padding) whose filter
    gradient is ``filter_gradient`` (of the forward convolution it transposes: the output's
    gradient is that convolution's input) where ``own_gradient_pays``."""

    def call(self, inputs):
        if (self.data_format != "channels_last" or self.use_bias or self.activation is not None
                and self.activation is not keras.activations.linear
                or self.output_padding is not None or tuple(self.dilation_rate) != (1, 1)
                or None in inputs.shape[1:3]):
            return super().call(inputs)
        if tuple(inputs.shape[1:3]) == (1, 1) and self.padding == "valid":
            return self._project(inputs)
        if not own_gradient_pays(inputs.dtype, _positions(inputs.shape)):
            return super().call(inputs)
        strides, padding = list(self.strides), self.padding.upper()
        output_shape = self.compute_output_shape(inputs.shape)

        @tf.custom_gradient
        def transpose(x, w):
            y = tf.nn.conv2d_transpose(x, w, [tf.shape(x)[0], *output_shape[1:]], strides,
                                       padding)

            def gradient(dy):
                with tf.name_scope("conv_transpose_gradient"):
                    dx = tf.nn.conv2d(dy, w, strides, padding)
                    # w is [kh, kw, c_out, c_in]: the forward convolution's filter, dy its input.
                    return dx, filter_gradient(dy, x, self.kernel_size, strides, padding)
            return y, gradient

        return transpose(inputs, tf.convert_to_tensor(self.kernel))

    def _project(self, inputs):
        """A 1x1 input (the DCGAN generator's projection of the latent to 4x4): the transposed
        convolution is a matrix product, y[n, a, b, o] = sum over c of x[n, c] w[a, b, o, c].
        TensorFlow's Conv2DBackpropInput took 4 ms per call for it (batch 64, 100 -> 4x4x512,
        bfloat16), the product 1 ms."""
        (kh, kw), filters = self.kernel_size, self.filters
        kernel = tf.reshape(tf.convert_to_tensor(self.kernel), [kh * kw * filters, -1])
        y = tf.matmul(tf.reshape(inputs, [-1, inputs.shape[-1]]), kernel, transpose_b=True)
        return tf.reshape(y, [-1, kh, kw, filters])
