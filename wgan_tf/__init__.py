"""wgan-tf: Wasserstein GANs (Arjovsky, Chintala, Bottou 2017) with keras.Model.fit, exported for
TensorFlow Serving."""
__version__ = "0.1.0"

from wgan_tf.gan import WGAN  # noqa: E402,F401
