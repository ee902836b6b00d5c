"""A thin client over TF Serving's generated gRPC stubs, for ``tensorflow_model_server`` or
``wgan-tf serve`` alike (in the manner of tensorflow/serving's ``example/resnet_client_grpc.py``).

The channel raises gRPC's 4 MB receive limit (a few hundred images are more) and retries calls
that fail with UNAVAILABLE (a server restarting, or its batch queue full) or RESOURCE_EXHAUSTED
(its limit of concurrent RPCs reached), with exponential backoff, through gRPC's own
service-config retry policy, so a server that is briefly overloaded costs a retry rather than an
error. Every failure surfaces as one
``ServerError`` line that names the address and the status.
"""
import json
import time

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from wgan_tf.errors import ConfigError

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
_RETRY = {"methodConfig": [{
    "name": [{"service": "tensorflow.serving.PredictionService"},
             {"service": "tensorflow.serving.ModelService"}],
    "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.2s", "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"]},
}]}


class ServerError(ConfigError):
    """A call the server refused or never answered; ``code`` is the gRPC status (or None)."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class Client:
    """Ask a model server for images.

    ``max_batch`` splits large asks into requests of at most that many samples (the Python
    server's default cap); the seeds make the split invisible in the result.
    """

    def __init__(self, address, model_name="wgan", timeout=30.0, max_batch=1024):
        self.address, self.model_name = address, model_name
        self.timeout, self.max_batch = timeout, max_batch
        self._channel = grpc.insecure_channel(address, options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.enable_retries", 1),
            ("grpc.service_config", json.dumps(_RETRY)),
        ])
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def generate(self, num, seed=0):
        """Images for seeds ``seed .. seed + num - 1``: uint8 ``[num, H, W, C]``.

        A seed always gives the same image, whatever ``num`` and the other seeds are.
        """
        seeds = _seed_range(num, seed)
        return np.concatenate([
            self.predict("from_seeds", {"seeds": chunk}, ["images"])["images"]
            for chunk in self._chunks(seeds)])

    def png_bytes(self, num, seed=0):
        """The same images as ``generate`` as PNG files encoded by the server: a list of bytes."""
        seeds = _seed_range(num, seed)
        return [png for chunk in self._chunks(seeds)
                for png in self.predict("from_seeds", {"seeds": chunk}, ["png_bytes"])["png_bytes"]]

    def from_latent(self, z):
        """Images for latent vectors ``z`` (float32 ``[N, latent_dim]``): uint8 ``[N, H, W, C]``."""
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or not len(z):
            raise ConfigError(f"latent vectors must be a non-empty [N, latent_dim] array, "
                              f"got shape {z.shape}")
        return np.concatenate([self.predict("serving_default", {"latent": chunk})["images"]
                               for chunk in self._chunks(z)])

    def reconstruct(self, images):
        """An auto-encoder's reconstructions of uint8 ``images`` ``[N, H, W, C]`` (the model's
        size, ``image_shape()``): uint8 ``[N, H, W, C]``."""
        return np.concatenate([self.predict("reconstruct", {"images": chunk}, ["images"])["images"]
                               for chunk in self._chunks(_images(images))])

    def encode(self, images):
        """An auto-encoder's codes of uint8 ``images`` ``[N, H, W, C]``: float32
        ``[N, latent_dim]``."""
        return np.concatenate([self.predict("encode", {"images": chunk})["latent"]
                               for chunk in self._chunks(_images(images))])

    def image_shape(self, signature="reconstruct"):
        """(H, W, C) of the images ``signature`` takes, from the model's metadata; a model without
        that signature (a GAN's generator has no ``reconstruct``) is a ``ServerError``."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = self.model_name
        response = self._call(self._predict.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        if "signature_def" in response.metadata:
            response.metadata["signature_def"].Unpack(signatures)
        if signature not in signatures.signature_def:
            raise ServerError(f"model {self.model_name!r} at {self.address} has no {signature!r} "
                              f"signature (it has {', '.join(sorted(signatures.signature_def))})")
        info = signatures.signature_def[signature].inputs
        return tuple(d.size for d in info["images"].tensor_shape.dim[1:])

    def predict(self, signature, inputs, output_filter=()):
        """One Predict call: ``{input name: array}`` -> ``{output name: array}``."""
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = signature
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        request.output_filter.extend(output_filter)
        response = self._call(self._predict.Predict, request)
        return {key: tf.make_ndarray(proto) for key, proto in response.outputs.items()}

    def status(self):
        """``{version: state name}`` of the model's versions, e.g. ``{2: "AVAILABLE"}``."""
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = self.model_name
        response = self._call(self._models.GetModelStatus, request)
        names = get_model_status_pb2.ModelVersionStatus.State.Name
        return {s.version: names(s.state) for s in response.model_version_status}

    def wait_until_ready(self, timeout):
        """Block until the model has an AVAILABLE version, for a server that is still starting.

        Raises the last ServerError after ``timeout`` seconds; an unknown model fails at once.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                if "AVAILABLE" in self.status().values():
                    return
                error = ServerError(f"{self.address} has no available version of "
                                    f"{self.model_name!r} yet")
            except ServerError as e:
                if e.code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
                error = e
            if time.monotonic() >= deadline:
                raise error
            time.sleep(0.5)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _chunks(self, array):
        return [array[i:i + self.max_batch] for i in range(0, len(array), self.max_batch)]

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as e:
            code = e.code()
            if code == grpc.StatusCode.UNAVAILABLE:
                message = f"no server answering at {self.address} ({e.details()})"
            elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
                message = f"{self.address} did not answer within {self.timeout:g} s"
            else:
                message = f"{self.address} refused the request: {code.name}: {e.details()}"
            raise ServerError(message, code) from None


def _images(images):
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or not len(images):
        raise ConfigError(f"images must be a non-empty uint8 [N, H, W, C] array, got "
                          f"{images.dtype} {images.shape}")
    return images


def _seed_range(num, seed):
    if num < 1:
        raise ConfigError(f"the number of images must be at least 1, got {num}")
    return np.arange(seed, seed + num, dtype=np.int64)
