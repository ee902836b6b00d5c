"""Serving generated images over TF Serving's gRPC API.

``Client`` asks a server (``tensorflow_model_server`` or ``wgan-tf serve``) for images;
``server.ModelServer`` is the Python server; ``generate`` is the command that writes PNGs.
"""
from wgan_tf.serving.client import Client, ServerError

__all__ = ["Client", "ServerError"]
