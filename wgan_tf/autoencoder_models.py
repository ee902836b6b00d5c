"""The Wasserstein auto-encoder's networks, as the official code builds them (tolstikhin/wae,
models.py and ops.py, the MNIST and CelebA settings of configs.py), as Keras functional models.

- ``encoder``: the official ``dcgan`` encoder: stride-2 convolutions with filters doubling up to
  ``filters`` (1024 in the official settings), each followed by batch norm and ReLU, then a dense
  layer to the code. ``gaussian=True`` gives the VAE's encoder: two dense heads, the mean and the
  log variance (the official ``e_noise='gaussian'`` heads ``mean_lin`` and ``log_sigmas_lin``).
- ``decoder``: the official ``dcgan_mod`` decoder: a dense layer to a ``filters``-deep map at
  1/2^(layers-1) of the image size, ReLU (no batch norm there), stride-2 transposed convolutions
  halving the filters, each with batch norm and ReLU, and a last stride-1 transposed convolution to
  the image, tanh (images are in [-1, 1]: the official ``input_normalize_sym``).
- ``latent_adversary``: WAE-GAN's discriminator in the latent space: 4 ReLU dense layers of 512
  units and a logit (``z_adversary``, no batch norm).

Initialisation as ``ops.py`` with ``init_std`` 0.0099999: convolution kernels truncated-normal with
standard deviation 0.01, transposed-convolution and dense kernels normal 0.01, biases 0; batch norm
with scale and centre, epsilon 1e-5, decay (Keras momentum) 0.9. Kernels are 4x4 below 64 pixels
(the MNIST setting) and 5x5 from 64 (CelebA). Layer counts are sized for the image: the encoder
stops at 2x2 (MNIST's 28 -> 2) or after 4 layers (both official settings); the decoder has 3
layers (MNIST) up to 32 pixels, one more per doubling above (CelebA's 4 at 64).

``filters`` is the width option: the official 1024 is the default, a few dozen train on a CPU.
"""
import math

import keras
from keras import layers

from wgan_tf.models import check_image_size

INIT_STD = 0.01
ADVERSARY_UNITS = 512
ADVERSARY_LAYERS = 4
# ops.batch_norm with opts batch_norm_eps 1e-5, batch_norm_decay 0.9. synchronized=True: under
# MirroredStrategy the statistics are the global batch's, so one and several replicas agree.
_BN = dict(momentum=0.9, epsilon=1e-5, synchronized=True)


def kernel_size(image_size):
    return 5 if image_size >= 64 else 4


def encoder_layers(image_size):
    return min(4, int(math.log2(image_size)) - 1)


def decoder_layers(image_size):
    return max(3, int(math.log2(image_size)) - 2)


def _normal():
    return keras.initializers.RandomNormal(0.0, INIT_STD)


def _dense(units, name, activation=None, dtype=None):
    return layers.Dense(units, activation=activation, kernel_initializer=_normal(),
                        bias_initializer="zeros", name=name, dtype=dtype)


def encoder(image_size=64, channels=3, latent_dim=8, filters=1024, gaussian=False,
            name="encoder"):
    """Images ``[B, size, size, channels]`` in [-1, 1] -> codes ``[B, latent_dim]`` (or, with
    ``gaussian``, ``[mean, log_variance]``, each ``[B, latent_dim]``)."""
    check_image_size(image_size)
    n = encoder_layers(image_size)
    images = keras.Input((image_size, image_size, channels), name="images")
    x = images
    for i in range(n):
        x = layers.Conv2D(max(filters // 2 ** (n - i - 1), 1), kernel_size(image_size), strides=2,
                          padding="same",
                          kernel_initializer=keras.initializers.TruncatedNormal(0.0, INIT_STD),
                          bias_initializer="zeros", name=f"h{i}_conv")(x)
        x = layers.BatchNormalization(name=f"h{i}_bn", **_BN)(x)
        x = layers.ReLU()(x)
    x = layers.Flatten()(x)
    if not gaussian:
        # Codes in float32 under any precision (wgan_tf.precision): the latent penalties' input.
        return keras.Model(images, _dense(latent_dim, "latent", dtype="float32")(x), name=name)
    mean = _dense(latent_dim, "mean", dtype="float32")(x)
    log_variance = _dense(latent_dim, "log_variance", dtype="float32")(x)
    return keras.Model(images, [mean, log_variance], name=name)


def code(encoded):
    """The code an encoder's output stands for: itself, or a Gaussian encoder's mean (the code a
    VAE's reconstruction, its export and its evaluation use)."""
    return encoded[0] if isinstance(encoded, (list, tuple)) else encoded


def decoder(image_size=64, channels=3, latent_dim=8, filters=1024, name="decoder"):
    """Codes ``[B, latent_dim]`` -> images ``[B, size, size, channels]`` in [-1, 1]."""
    check_image_size(image_size)
    n = decoder_layers(image_size)
    start = image_size // 2 ** (n - 1)
    z = keras.Input((latent_dim,), name="latent")
    x = _dense(filters * start * start, "h0_lin")(z)
    x = layers.Reshape((start, start, filters))(x)
    x = layers.ReLU()(x)
    for i in range(n - 1):
        x = layers.Conv2DTranspose(max(filters // 2 ** (i + 1), 1), kernel_size(image_size),
                                   strides=2, padding="same", kernel_initializer=_normal(),
                                   bias_initializer="zeros", name=f"h{i}_deconv")(x)
        x = layers.BatchNormalization(name=f"h{i}_bn", **_BN)(x)
        x = layers.ReLU()(x)
    x = layers.Conv2DTranspose(channels, kernel_size(image_size), strides=1, padding="same",
                               kernel_initializer=_normal(), bias_initializer="zeros",
                               name="hfinal_deconv")(x)
    images = layers.Activation("tanh", dtype="float32", name="images")(x)
    return keras.Model(z, images, name=name)


def latent_adversary(latent_dim=8, units=ADVERSARY_UNITS, name="adversary"):
    """Codes ``[B, latent_dim]`` -> one logit per code, ``[B, 1]``: high for prior samples."""
    z = keras.Input((latent_dim,), name="latent")
    x = z
    for i in range(ADVERSARY_LAYERS):
        x = _dense(units, f"h{i + 1}_lin", activation="relu")(x)
    return keras.Model(z, _dense(1, "hfinal_lin", dtype="float32")(x), name=name)
