"""wgan-tf: Wasserstein GANs (Arjovsky, Chintala, Bottou 2017) and Wasserstein auto-encoders with
keras.Model.fit, exported for TensorFlow Serving.

``import wgan_tf`` is light: the model classes and the submodules (``wgan_tf.models``, ``.data``,
``.serving``, ``.metrics``, ...) load, with TensorFlow, on first use.
"""
import importlib

__version__ = "0.1.0"

# Public name -> module that defines it.
_CLASSES = {"WGAN": "wgan_tf.wgan", "GAN": "wgan_tf.gan", "WAE": "wgan_tf.wae",
            "VAE": "wgan_tf.vae"}
_SUBMODULES = ("autoencoder", "autoencoder_models", "build", "callbacks", "config", "data",
               "distribute", "evaluate", "explain", "export", "gan", "generative", "lipschitz",
               "losses", "metrics", "models", "pictures", "replicas", "rng", "rundir", "serving",
               "train", "vae", "wae", "wgan")

__all__ = [*_CLASSES, *_SUBMODULES]


def __getattr__(name):
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"wgan_tf.{name}")
    raise AttributeError(f"module 'wgan_tf' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
