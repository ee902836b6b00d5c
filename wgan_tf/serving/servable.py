"""One loaded model version and the Predict it answers, checked the way TF Serving checks it.

The signature definitions are read from ``saved_model.pb`` rather than from the restored Python
functions, so requests are validated against exactly what ``tensorflow_model_server`` would see:
input names, dtypes and shapes. A request the model cannot take raises ``RequestError`` with the
gRPC status code to answer, and never reaches TensorFlow.

Requests only ever read plain immutable values (``Signature``: names to ``tf.TensorSpec``): a
SignatureDef proto shared between requests would be changed by the first one that indexes its
``inputs`` map with an unknown name (protobuf inserts the key), and then refuse every later
request. Protos leave a Servable only as fresh copies, for metadata.
"""
import dataclasses
import time
from pathlib import Path
from types import MappingProxyType

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_log_pb2

from wgan_tf.serving import batching
from wgan_tf.serving.versions import WARMUP_FILE

DEFAULT_SIGNATURE = "serving_default"
# TF errors carry the same canonical codes as gRPC.
_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}


class RequestError(Exception):
    """A request the server refuses; ``code`` is the gRPC status to answer with."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message):
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _dtype_name(dtype):
    return types_pb2.DataType.Name(dtype)


def _shape_text(shape):
    """``[?, 8]``: a shape as error messages write it."""
    if shape.rank is None:
        return "any shape"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape.as_list()) + "]"


def _error_line(message):
    """The line of a TensorFlow error that says what failed. Run from Python, a graph's error reads
    "Graph execution error:", the failing node's stack, the op's own message (e.g. a signature's
    "assertion failed: [labels must be ...]"), then "[[{{node ...}}]]": the line before that."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return message
    if lines[0] == "Graph execution error:":
        end = next((i for i, line in enumerate(lines) if line.startswith("[[")), len(lines))
        return lines[end - 1] if end > 1 else lines[0]
    return lines[0]


@dataclasses.dataclass(frozen=True)
class Signature:
    """A signature's inputs and outputs: read-only maps of name -> ``tf.TensorSpec``."""

    inputs: MappingProxyType
    outputs: MappingProxyType

    @classmethod
    def from_proto(cls, signature_def):
        def specs(infos):
            return MappingProxyType({key: tf.TensorSpec(tf.TensorShape(info.tensor_shape),
                                                        tf.dtypes.as_dtype(info.dtype))
                                     for key, info in infos.items()})
        return cls(specs(signature_def.inputs), specs(signature_def.outputs))


class Servable:
    """A SavedModel version loaded for serving, with a cap on samples per request.

    With a ``batcher`` (``batching.Batcher``), the signatures that batch along dimension 0 run
    through it, merged with other requests; ``metrics`` (``metrics.Metrics``) gets the runtime
    latency of every request.
    """

    def __init__(self, name, version, path, max_batch=1024, batcher=None, metrics=None):
        self.name, self.version, self.path, self.max_batch = name, version, Path(path), max_batch
        self.batcher, self.metrics = batcher, metrics
        saved_model = saved_model_pb2.SavedModel()
        saved_model.ParseFromString((self.path / "saved_model.pb").read_bytes())
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        for key, sig in saved_model.meta_graphs[0].signature_def.items():
            if not key.startswith("__"):  # __saved_model_init_op is internal
                signature_defs.signature_def[key].CopyFrom(sig)
        self._signature_defs = signature_defs.SerializeToString()  # bytes: nothing can change it
        self.signatures = MappingProxyType({key: Signature.from_proto(sig) for key, sig in
                                            signature_defs.signature_def.items()})
        self._batchable = frozenset(key for key, sig in self.signatures.items()
                                    if batching.batchable(sig))
        self._model = tf.saved_model.load(str(self.path))
        self.class_names = self._read_class_names()

    def signature_def_map(self):
        """The signatures as a SignatureDefMap proto, a fresh copy the caller may change."""
        return get_model_metadata_pb2.SignatureDefMap.FromString(self._signature_defs)

    def metadata(self):
        """GetModelMetadataResponse with the ``signature_def`` field, as TF Serving gives it."""
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = self.version
        response.metadata["signature_def"].Pack(self.signature_def_map())
        if self.class_names is not None:
            response.metadata["class_names"].Pack(
                tf.make_tensor_proto(list(self.class_names), tf.string))
        return response

    def _read_class_names(self):
        """A conditional generator's class names, a tuple in label order, from its ``classes``
        signature (``index`` int64 -> ``class_names`` string ``[-1, K]``); None without one."""
        classes = self.signatures.get("classes")
        if classes is None or dict(classes.inputs) != {"index": tf.TensorSpec([None], tf.int64)} \
                or "class_names" not in classes.outputs:
            return None
        names = self._model.signatures["classes"](index=tf.zeros([1], tf.int64))["class_names"]
        return tuple(name.decode() for name in names[0].numpy())

    def signature(self, name):
        """The ``Signature`` called ``name``; an unknown name is the client's error."""
        signature = self.signatures.get(name)
        if signature is None:
            raise _invalid(f'Serving signature key "{name}" not found; this model has '
                           f"{', '.join(sorted(self.signatures))}")
        return signature

    def predict(self, request):
        """Answer a PredictRequest (model name and version already resolved by the caller)."""
        return self._predict(request, self.max_batch)

    def _predict(self, request, max_batch, batched=True):
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        signature = self.signature(signature_name)
        inputs = self._check_inputs(signature, request.inputs, max_batch)
        self._check_values(signature_name, inputs)
        wanted = list(request.output_filter) or list(signature.outputs)
        unknown = sorted(set(wanted) - set(signature.outputs))
        if unknown:
            raise _invalid(f"output_filter names {unknown}, not outputs of {signature_name!r} "
                           f"({', '.join(sorted(signature.outputs))})")
        started = time.monotonic()
        try:
            if batched and self.batcher is not None and signature_name in self._batchable:
                # Requests merge only with others of the same version, signature and row shape.
                key = (self.name, self.version, signature_name,
                       tuple((k, v.shape[1:]) for k, v in sorted(inputs.items())))
                outputs = self.batcher.run(key, self._runner(signature_name), inputs)
            else:
                outputs = self._runner(signature_name)(inputs)
        except batching.Refused as e:
            raise RequestError(e.code, e.message) from None
        except tf.errors.OpError as e:
            raise RequestError(_GRPC_CODES.get(e.error_code, grpc.StatusCode.INTERNAL),
                               _error_line(e.message)) from e
        if self.metrics is not None:
            self.metrics.runtime_latency.labels(self.name, "Predict", "TF2").observe(
                (time.monotonic() - started) * 1e6)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = self.version
        response.model_spec.signature_name = signature_name
        for key in wanted:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key]))
        return response

    def _runner(self, signature_name):
        """The signature as a function of numpy arrays, to numpy arrays."""
        function = self._model.signatures[signature_name]

        def run(arrays):
            outputs = function(**{k: tf.constant(v) for k, v in arrays.items()})
            return {k: v.numpy() for k, v in outputs.items()}
        return run

    def _check_inputs(self, signature, tensors, max_batch):
        missing = sorted(set(signature.inputs) - set(tensors))
        extra = sorted(set(tensors) - set(signature.inputs))
        if missing or extra:
            raise _invalid(f"inputs must be exactly {sorted(signature.inputs)}; "
                           f"missing {missing}, unexpected {extra}")
        arrays = {}
        for key, spec in signature.inputs.items():
            proto = tensors[key]  # the request's own map, and the key is in it
            if proto.dtype != spec.dtype.as_datatype_enum:
                raise _invalid(f"input {key!r} must be {_dtype_name(spec.dtype.as_datatype_enum)}, "
                               f"got {_dtype_name(proto.dtype)}")
            shape = [d.size for d in proto.tensor_shape.dim]
            if any(s < 0 for s in shape) or not spec.shape.is_compatible_with(shape):
                raise _invalid(f"input {key!r} must have shape {_shape_text(spec.shape)}, "
                               f"got {shape}")
            if max_batch is not None and shape and shape[0] > max_batch:
                raise _invalid(f"{shape[0]} samples in one request; this server takes at most "
                               f"{max_batch}")
            try:
                arrays[key] = tf.make_ndarray(proto)
            except (ValueError, TypeError) as e:
                raise _invalid(f"input {key!r} is not a valid tensor: {e}") from e
        if len({a.shape[:1] for a in arrays.values()}) > 1:
            raise _invalid("all inputs must have the same batch size (dimension 0)")
        return arrays

    def _check_values(self, signature_name, inputs):
        """Refuse here, before TensorFlow, what the exported signatures' own checks refuse
        (``wgan_tf.export``): a class label outside the model's classes, a negative or NaN
        truncation, a non-finite interpolation fraction. Run in a batch merged with other
        requests, the graph's error would fail those requests too."""
        labels = inputs.get("labels")
        if labels is not None and self.class_names is not None:
            labels = np.asarray(labels)
            bad = labels[(labels < 0) | (labels >= len(self.class_names))]
            if bad.size:
                raise _invalid(f"labels must be class indices in [0, {len(self.class_names)}) "
                               f"({', '.join(self.class_names[:20])}"
                               f"{', ...' if len(self.class_names) > 20 else ''}), "
                               f"got {bad[:5].tolist()}")
        if signature_name == "from_seeds_truncated" and "truncation" in inputs \
                and not np.all(np.asarray(inputs["truncation"]) >= 0):
            raise _invalid("truncation (psi) must be >= 0 (0: the mean latent; 6 or more: no "
                           "truncation)")
        if signature_name == "interpolate" and "t" in inputs \
                and not np.all(np.isfinite(np.asarray(inputs["t"]))):
            raise _invalid("the interpolation fraction t must be a finite number")

    def warm_up(self):
        """Replay ``assets.extra/tf_serving_warmup_requests``, as TF Serving does at load time.

        Returns how many requests were replayed (0 when the version has no warm-up file). The
        per-request cap does not apply: warm-up sizes are the exporter's choice, not a client's.
        """
        path = self.path / WARMUP_FILE
        if not path.is_file():
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            log = prediction_log_pb2.PredictionLog.FromString(record)
            if log.HasField("predict_log"):
                # Not through the batcher: the version is not serving yet, and its warm-up
                # should cost the time of its own requests only.
                self._predict(log.predict_log.request, max_batch=None, batched=False)
                count += 1
        return count

