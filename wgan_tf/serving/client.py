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

    def generate(self, num, seed=0, labels=None, truncation=None):
        """Images for seeds ``seed .. seed + num - 1``: uint8 ``[num, H, W, C]``.

        A seed (with its label) always gives the same image, whatever ``num`` and the other seeds
        are. A conditional model needs ``labels``: one class for all, or one per image, each a
        class index or name (``class_names()``). ``truncation`` psi draws each latent from the
        normal truncated to [-psi, psi] (signature ``from_seeds_truncated``): less variety, more
        typical images; psi >= 6 gives the untruncated images.
        """
        signature, inputs = self._seed_inputs(num, seed, labels, truncation)
        return self._predict_chunks(signature, inputs, "images")

    def png_bytes(self, num, seed=0, labels=None, truncation=None):
        """The same images as ``generate`` as PNG files encoded by the server: a list of bytes."""
        signature, inputs = self._seed_inputs(num, seed, labels, truncation)
        return list(self._predict_chunks(signature, inputs, "png_bytes"))

    def interpolate(self, seed_a, seed_b, steps=8, label=None):
        """``steps`` images along the spherical path from ``seed_a``'s latent to ``seed_b``'s
        (the first and last are exactly their ``generate`` images), with a conditional model's
        ``label`` (index or name) for all: uint8 ``[steps, H, W, C]``."""
        if steps < 2:
            raise ConfigError(f"an interpolation needs at least 2 steps, got {steps}")
        inputs = {"seed_a": np.full(steps, seed_a, np.int64),
                  "seed_b": np.full(steps, seed_b, np.int64),
                  "t": np.linspace(0.0, 1.0, steps, dtype=np.float32)}
        if label is not None:
            inputs["labels"] = self._label_indices(label, steps)
        return self._predict_chunks("interpolate", inputs, "images")

    def class_names(self):
        """A conditional model's class names in label order (its ``classes`` signature), or None
        for a model without classes."""
        if "classes" not in self._signature_defs():
            return None
        names = self.predict("classes", {"index": np.zeros(1, np.int64)})["class_names"][0]
        return [name.decode() for name in names]

    def from_latent(self, z, labels=None):
        """Images for latent vectors ``z`` (float32 ``[N, latent_dim]``), with a conditional
        model's ``labels`` as in ``generate``: uint8 ``[N, H, W, C]``."""
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or not len(z):
            raise ConfigError(f"latent vectors must be a non-empty [N, latent_dim] array, "
                              f"got shape {z.shape}")
        inputs = {"latent": z}
        if labels is not None:
            inputs["labels"] = self._label_indices(labels, len(z))
        return self._predict_chunks("serving_default", inputs, "images")

    def reconstruct(self, images):
        """An auto-encoder's reconstructions of uint8 ``images`` ``[N, H, W, C]`` (the model's
        size, ``image_shape()``): uint8 ``[N, H, W, C]``."""
        return self._predict_chunks("reconstruct", {"images": _images(images)}, "images")

    def encode(self, images):
        """An auto-encoder's codes of uint8 ``images`` ``[N, H, W, C]``: float32
        ``[N, latent_dim]``."""
        return self._predict_chunks("encode", {"images": _images(images)}, "latent")

    def image_shape(self, signature="reconstruct"):
        """(H, W, C) of the images ``signature`` takes, from the model's metadata; a model without
        that signature (a GAN's generator has no ``reconstruct``) is a ``ServerError``."""
        signatures = self._signature_defs()
        if signature not in signatures:
            raise ServerError(f"model {self.model_name!r} at {self.address} has no {signature!r} "
                              f"signature (it has {', '.join(sorted(signatures))})")
        return tuple(d.size for d in signatures[signature].inputs["images"].tensor_shape.dim[1:])

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

    def _predict_chunks(self, signature, inputs, output):
        """``output`` of ``signature`` for inputs of any batch size, in requests of at most
        ``max_batch``, concatenated."""
        count = len(next(iter(inputs.values())))
        return np.concatenate([
            self.predict(signature, {k: v[i:i + self.max_batch] for k, v in inputs.items()},
                         [output])[output] for i in range(0, count, self.max_batch)])

    def _seed_inputs(self, num, seed, labels, truncation):
        seeds = _seed_range(num, seed)
        inputs = {"seeds": seeds}
        if labels is not None:
            inputs["labels"] = self._label_indices(labels, num)
        if truncation is None:
            return "from_seeds", inputs
        if not truncation >= 0:
            raise ConfigError(f"truncation (psi) must be >= 0, got {truncation}")
        return "from_seeds_truncated", {**inputs, "truncation": np.full(num, truncation,
                                                                        np.float32)}

    def _label_indices(self, labels, num):
        """int64 ``[num]`` class indices for one label or ``num`` of them, names resolved through
        ``class_names()``; an unknown name is a ConfigError naming the classes."""
        single = isinstance(labels, (str, int, np.integer))
        items = [labels] * num if single else list(labels)
        if len(items) != num:
            raise ConfigError(f"{len(items)} labels for {num} images: give one label, or one "
                              "per image")
        if any(isinstance(item, str) for item in items):
            names = self.class_names()
            if names is None:
                raise ConfigError(f"model {self.model_name!r} at {self.address} has no classes "
                                  "(it is not a conditional model)")
            unknown = next((item for item in items if isinstance(item, str)
                            and item not in names), None)
            if unknown is not None:
                raise ConfigError(f"unknown class {unknown!r}: model {self.model_name!r} has "
                                  f"classes {', '.join(names)}")
            items = [names.index(item) if isinstance(item, str) else item for item in items]
        return np.asarray(items, np.int64)

    def _signature_defs(self):
        """The model's signatures, ``{name: SignatureDef}``, from its metadata."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = self.model_name
        response = self._call(self._predict.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        if "signature_def" in response.metadata:
            response.metadata["signature_def"].Unpack(signatures)
        return signatures.signature_def

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
