"""Convolution layers whose filter gradient is a matrix product where oneDNN's own is slow.

TensorFlow's bfloat16 filter gradient (Conv2DBackpropFilter, oneDNN's ``jit_bf16`` backward-weights
kernel) is slow on a CPU when the output has few positions and many channels: for the DCGAN
critic's last stride-2 layer (8x8x256 -> 4x4x512, batch 64) it took 36 ms, slower than its
float32 twin (25 ms) and than PyTorch running the same oneDNN primitive (21 ms), at 119 GFLOP/s
where oneDNN's bfloat16 matrix product runs at 255 (benchmarks/profile_step.py; docs/BENCHMARKS.md,
"Training throughput"). The generator's first stride-2 transposed convolution has the same filter
gradient with the roles of its tensors swapped. There, the gradient is computed as the product it
is: the input's patches (``tf.image.extract_patches``, [positions, kh * kw * c_in]) transposed times
the output gradient ([positions, c_out]): 17.8 ms. Elsewhere, and on GPUs and in float32, the layers
are Keras's own, unchanged.

Only the filter gradient changes: the forward pass and the input gradient are TensorFlow's usual
ops, so the served signatures and the gradient penalty's second derivatives are unaffected, and one
replica and several compute the same arithmetic.
"""
import keras
import tensorflow as tf
from keras import layers

# The filter gradient is a product when the output it is taken against has at most this many
# positions (4x4): measured faster there only (at 8x8 oneDNN's kernel wins, 22.5 against 31.5 ms).
MAX_POSITIONS = 16


def _on_cpu():
    return not tf.config.list_physical_devices("GPU")


def product_pays(dtype, out_positions):
    """Whether the filter gradient is computed as a product: bfloat16 on a CPU, few positions."""
    return dtype == tf.bfloat16 and out_positions <= MAX_POSITIONS and _on_cpu()


def filter_gradient(inputs, out_backprop, kernel_size, strides, padding):
    """d loss / d filter of ``conv2d(inputs, filter, strides, padding)`` given the output's
    gradient ``out_backprop``, as patches^T . out_backprop: ``[kh, kw, c_in, c_out]``."""
    kh, kw = kernel_size
    c_in, c_out = inputs.shape[-1], out_backprop.shape[-1]
    patches = tf.image.extract_patches(inputs, [1, kh, kw, 1], [1, *strides, 1], [1, 1, 1, 1],
                                       padding.upper())
    product = tf.matmul(tf.reshape(patches, [-1, kh * kw * c_in]),
                        tf.reshape(out_backprop, [-1, c_out]), transpose_a=True)
    return tf.reshape(product, [kh, kw, c_in, c_out])


def input_gradient(out_backprop, kernel, input_shape, kernel_size, strides, padding):
    """d loss / d input of ``conv2d(input, kernel, strides, padding)`` (TensorFlow's op), itself
    differentiable with the filter gradient as a product: the gradient penalty differentiates the
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
    ``filter_gradient`` where ``product_pays``."""

    def convolution_op(self, inputs, kernel):
        output_shape = self.compute_output_shape(inputs.shape)
        if (self.data_format != "channels_last" or self.groups != 1
                or tuple(self.dilation_rate) != (1, 1) or None in output_shape[1:3]
                or not product_pays(inputs.dtype, _positions(output_shape))):
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
    gradient is that convolution's input) where ``product_pays``."""

    def call(self, inputs):
        if (self.data_format != "channels_last" or self.use_bias or self.activation is not None
                and self.activation is not keras.activations.linear
                or self.output_padding is not None or tuple(self.dilation_rate) != (1, 1)
                or None in inputs.shape[1:3]
                or not product_pays(inputs.dtype, _positions(inputs.shape))):
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
