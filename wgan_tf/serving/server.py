"""``wgan-tf serve``: TF Serving's gRPC API, answered by this package in Python.

For development, tests and machines where ``tensorflow_model_server`` cannot be installed. It
speaks the same protocol from the ``tensorflow-serving-api`` protos, so one client works against
both: ``PredictionService.Predict`` and ``GetModelMetadata``, ``ModelService.GetModelStatus``, and
the standard ``grpc.health.v1.Health`` service. Requests run concurrently on a thread pool (the
TensorFlow runtime is thread-safe and releases the GIL while it computes). SIGTERM or Ctrl-C
stops it gracefully: health turns NOT_SERVING, in-flight requests get ``--grace`` seconds.
"""
import logging
import signal
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from wgan_tf.errors import ConfigError
from wgan_tf.serving.manager import VersionManager
from wgan_tf.serving.servable import RequestError

log = logging.getLogger(__name__)
PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
# Responses of a few hundred 64x64 images exceed gRPC's 4 MB default; requests are small.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


def run(args):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = ModelServer(args.model_base_path, port=args.port, model_name=args.model_name,
                         max_batch=args.max_batch, threads=args.threads,
                         poll_seconds=args.poll_seconds, rest_port=args.rest_port,
                         rest_max_body_bytes=args.rest_max_body_bytes,
                         rest_timeout=args.rest_timeout)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    rest = f", REST on port {server.rest_port}" if server.rest_port else ""
    log.info("gRPC on port %d%s; model %r from %s", server.port, rest, args.model_name,
             args.model_base_path)
    stop.wait()
    log.info("shutting down")
    server.stop(grace=args.grace)


def _answer(context, call):
    """Run ``call``; turn a refused request into its gRPC status (the server keeps serving)."""
    try:
        return call()
    except RequestError as e:
        context.abort(e.code, e.message)


class _Models:
    """Resolves a request's ModelSpec to a servable, with TF Serving's error codes."""

    def __init__(self, manager):
        self.manager = manager

    def servable(self, spec):
        self._check_name(spec)
        if spec.version_label:
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"Unrecognized servable version label: {spec.version_label}")
        return self.manager.servable(spec.version.value if spec.HasField("version") else None)

    def status(self, spec):
        self._check_name(spec)
        return self.manager.status(spec.version.value if spec.HasField("version") else None)

    def _check_name(self, spec):
        if spec.name != self.manager.name:
            raise RequestError(grpc.StatusCode.NOT_FOUND,
                               f"Servable not found for request: Latest({spec.name}); "
                               f"this server has {self.manager.name!r}")


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, models):
        self.models = models

    def Predict(self, request, context):
        return _answer(context, lambda: self.models.servable(request.model_spec).predict(request))

    def GetModelMetadata(self, request, context):
        def metadata():
            servable = self.models.servable(request.model_spec)
            if list(request.metadata_field) != ["signature_def"]:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT,
                                   'metadata_field must be ["signature_def"], the only metadata '
                                   f"served; got {list(request.metadata_field)}")
            return servable.metadata()
        return _answer(context, metadata)


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, models):
        self.models = models

    def GetModelStatus(self, request, context):
        return _answer(context, lambda: self.models.status(request.model_spec))


class ModelServer:
    """The server: ``start()`` loads the newest version and listens; ``stop()`` ends it.

    ``port=0`` picks a free port, readable from ``.port`` after ``start()`` (as ``.rest_port``).
    ``rest_max_body_bytes`` and ``rest_timeout`` are the REST server's (``rest.RestServer``).
    Also a context manager.
    """

    def __init__(self, model_base_path, port=8500, model_name="wgan", max_batch=1024, threads=16,
                 poll_seconds=1.0, rest_port=None, host="[::]", rest_max_body_bytes=None,
                 rest_timeout=30.0):
        if max_batch < 1:
            raise ConfigError(f"--max-batch must be at least 1, got {max_batch}")
        if rest_max_body_bytes is not None and rest_max_body_bytes < 1:
            raise ConfigError(f"--rest-max-body-bytes must be at least 1, got "
                              f"{rest_max_body_bytes}")
        if not rest_timeout > 0:
            raise ConfigError(f"--rest-timeout must be positive, got {rest_timeout}")
        self.manager = VersionManager(model_name, model_base_path, max_batch, poll_seconds)
        self.host, self.port, self.rest_port, self.threads = host, port, rest_port, threads
        self.rest_max_body_bytes, self.rest_timeout = rest_max_body_bytes, rest_timeout
        self._grpc = self._rest = None
        self._health = health.HealthServicer()

    def start(self):
        self.manager.load_newest()
        models = _Models(self.manager)
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="grpc"),
            options=[("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(models), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(models), self._grpc)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._grpc)
        try:
            self.port = self._grpc.add_insecure_port(f"{self.host}:{self.port}")
        except RuntimeError as e:
            raise ConfigError(f"cannot listen on port {self.port}: {e}") from e
        self._grpc.start()
        if self.rest_port is not None:
            from wgan_tf.serving.rest import RestServer

            try:
                self._rest = RestServer(models, self.rest_port,
                                        max_body_bytes=self.rest_max_body_bytes,
                                        timeout=self.rest_timeout)
            except OSError as e:
                self._grpc.stop(0)
                raise ConfigError(f"cannot listen on REST port {self.rest_port}: "
                                  f"{e.strerror or e}") from e
            self.rest_port = self._rest.port
        self.manager.start()
        for service in ("", PREDICTION_SERVICE):
            self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        return self

    def stop(self, grace=5.0):
        self._health.enter_graceful_shutdown()
        if self._rest is not None:
            self._rest.stop()
        if self._grpc is not None:
            self._grpc.stop(grace).wait()
        self.manager.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop(grace=0)
