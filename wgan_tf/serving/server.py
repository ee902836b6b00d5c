"""``wgan-tf serve``: TF Serving's gRPC and REST APIs, answered by this package in Python.

For development, tests, the ``serving-python`` image and machines where ``tensorflow_model_server``
cannot be installed. It speaks the same protocol from the ``tensorflow-serving-api`` protos, so one
client works against both: ``PredictionService.Predict`` and ``GetModelMetadata``,
``ModelService.GetModelStatus`` and ``HandleReloadConfigRequest``, and the standard
``grpc.health.v1.Health`` service. It reads TF Serving's own configuration files: several models
from ``--model-config-file`` (``registry.py``), request batching from
``--batching-parameters-file`` (``batching.py``), Prometheus metrics from
``--monitoring-config-file`` (``metrics.py``, on the REST port).

Everything is bounded, so that memory and threads stay flat under any load: ``--threads`` gRPC
handlers and at most ``--max-concurrent-rpcs`` RPCs in the server (gRPC answers
RESOURCE_EXHAUSTED beyond), the batcher's queues (UNAVAILABLE when full), and the REST server's
threads and connections (``rest.py``: 503 with Retry-After beyond).

The ports open first; the models load behind them, and health says NOT_SERVING (the readiness
endpoint 503) until every model's newest version is loaded and its warm-up replayed. SIGTERM or
Ctrl-C stops it gracefully: health turns NOT_SERVING, in-flight requests get ``--grace`` seconds.
"""
import logging
import signal
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import (model_management_pb2, model_service_pb2_grpc,
                                     prediction_service_pb2_grpc)

from wgan_tf.errors import ConfigError
from wgan_tf.serving import config_files
from wgan_tf.serving.batching import Batcher, BatchingOptions
from wgan_tf.serving.metrics import Metrics
from wgan_tf.serving.registry import ModelRegistry, single_model_config
from wgan_tf.serving.servable import RequestError

log = logging.getLogger(__name__)
PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
# Responses of a few hundred 64x64 images exceed gRPC's 4 MB default; requests are small.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


def run(args):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = ModelServer(**server_options(args))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    rest = f", REST on port {server.rest_port}" if server.rest_port else ""
    log.info("gRPC on port %d%s; models %s", server.port, rest, ", ".join(server.registry.names()))
    stop.wait()
    log.info("shutting down")
    server.stop(grace=args.grace)


def server_options(args):
    """``ModelServer`` keywords from ``wgan-tf serve``'s arguments, the config files read."""
    if args.model_config_file and args.model_base_path:
        raise ConfigError("give --model-config-file or --model-base-path (one model), not both")
    if args.batching_parameters_file and not args.enable_batching:
        raise ConfigError("--batching-parameters-file needs --enable-batching")
    batching = None
    if args.enable_batching:
        batching = (BatchingOptions.from_proto(
            config_files.batching_parameters(args.batching_parameters_file))
            if args.batching_parameters_file else BatchingOptions())
    metrics_path = None
    if args.monitoring_config_file:
        metrics_path = config_files.prometheus_path(args.monitoring_config_file)
        if metrics_path and args.rest_port is None:
            raise ConfigError("--monitoring-config-file serves metrics on the REST port: "
                              "give --rest-port too")
    return dict(
        model_base_path=args.model_base_path or (None if args.model_config_file
                                                 else "saved_models/wgan"),
        model_name=args.model_name, model_config_file=args.model_config_file,
        config_poll_seconds=args.model_config_file_poll_wait_seconds, port=args.port,
        rest_port=args.rest_port, max_batch=args.max_batch, threads=args.threads,
        max_concurrent_rpcs=args.max_concurrent_rpcs, poll_seconds=args.poll_seconds,
        rest_max_body_bytes=args.rest_max_body_bytes, rest_timeout=args.rest_timeout,
        rest_threads=args.rest_threads, rest_max_connections=args.rest_max_connections,
        batching=batching, metrics_path=metrics_path)


def _answer(context, call):
    """Run ``call``; turn a refused request into its gRPC status (the server keeps serving)."""
    try:
        return call()
    except RequestError as e:
        context.abort(e.code, e.message)


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, models, metrics):
        self.models, self.metrics = models, metrics

    def Predict(self, request, context):
        name, started, code = request.model_spec.name, time.monotonic(), grpc.StatusCode.OK
        self.metrics.in_flight.labels("GRPC").inc()
        try:
            return self.models.servable(request.model_spec).predict(request)
        except RequestError as e:
            code = e.code
            context.abort(e.code, e.message)
        finally:  # TF Serving's PredictionServiceImpl: latency of successes, count of all
            self.metrics.in_flight.labels("GRPC").dec()
            if code == grpc.StatusCode.OK:
                self.metrics.request_latency.labels(name, "Predict", "GRPC").observe(
                    (time.monotonic() - started) * 1e6)
            self.metrics.request_count.labels(name, code.name).inc()

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

    def HandleReloadConfigRequest(self, request, context):
        """Serve the request's ModelServerConfig from now on, as TF Serving does: the error,
        if any, both in the response's status and as the call's."""
        response = model_management_pb2.ReloadConfigResponse()
        try:
            self.models.reload(request.config)
        except ConfigError as e:
            response.status.error_code = grpc.StatusCode.INVALID_ARGUMENT.value[0]
            response.status.error_message = str(e)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        response.status.SetInParent()
        return response


class ModelServer:
    """The server: ``start()`` listens, loads the models and returns once they serve; ``stop()``
    ends it. Also a context manager.

    One model from ``model_base_path`` (named ``model_name``), or the models of the
    ModelServerConfig file ``model_config_file`` (re-read every ``config_poll_seconds`` if not 0).
    ``port=0`` picks a free port, readable from ``.port`` after ``start()`` (as ``.rest_port``).
    ``batching`` (``batching.BatchingOptions``) turns request batching on; ``metrics_path`` serves
    Prometheus metrics there on the REST port. ``rest_*`` are the REST server's
    (``rest.RestServer``).
    """

    def __init__(self, model_base_path=None, port=8500, model_name="wgan", max_batch=1024,
                 threads=64, poll_seconds=1.0, rest_port=None, host="[::]",
                 rest_max_body_bytes=None, rest_timeout=30.0, model_config_file=None,
                 config_poll_seconds=0.0, max_concurrent_rpcs=256, rest_threads=16,
                 rest_max_connections=64, batching=None, metrics_path=None):
        for name, value in (("--max-batch", max_batch), ("--threads", threads),
                            ("--max-concurrent-rpcs", max_concurrent_rpcs),
                            ("--rest-threads", rest_threads),
                            ("--rest-max-connections", rest_max_connections)):
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        if rest_max_body_bytes is not None and rest_max_body_bytes < 1:
            raise ConfigError(f"--rest-max-body-bytes must be at least 1, got "
                              f"{rest_max_body_bytes}")
        if not rest_timeout > 0:
            raise ConfigError(f"--rest-timeout must be positive, got {rest_timeout}")
        if config_poll_seconds < 0:
            raise ConfigError("--model-config-file-poll-wait-seconds must not be negative")
        self.metrics = Metrics()
        self.batcher = Batcher(batching, self.metrics) if batching is not None else None
        options = dict(poll_seconds=poll_seconds, max_batch=max_batch, batcher=self.batcher,
                       metrics=self.metrics)
        try:
            if model_config_file is not None:
                self.registry = ModelRegistry.from_file(model_config_file,
                                                        config_poll_seconds=config_poll_seconds,
                                                        **options)
            else:
                self.registry = ModelRegistry(single_model_config(model_name, model_base_path),
                                              **options)
        except ConfigError:
            if self.batcher is not None:  # its threads would wait for work forever
                self.batcher.stop()
            raise
        self.registry.on_change = self._update_health
        self.host, self.port, self.rest_port = host, port, rest_port
        self.threads, self.max_concurrent_rpcs = threads, max_concurrent_rpcs
        self.rest_options = dict(max_body_bytes=rest_max_body_bytes, timeout=rest_timeout,
                                 threads=rest_threads, max_connections=rest_max_connections,
                                 metrics=self.metrics, metrics_path=metrics_path)
        self._grpc = self._rest = None
        self._health = health.HealthServicer()

    @property
    def manager(self):
        """The VersionManager of the one model (of the first, with several)."""
        return self.registry.manager(self.registry.names()[0])

    def start(self):
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="grpc"),
            options=[("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)],
            maximum_concurrent_rpcs=self.max_concurrent_rpcs)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self.registry, self.metrics), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(self.registry),
                                                                  self._grpc)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._grpc)
        self._update_health()
        try:
            self.port = self._grpc.add_insecure_port(f"{self.host}:{self.port}")
        except RuntimeError as e:
            raise ConfigError(f"cannot listen on port {self.port}: {e}") from e
        self._grpc.start()
        if self.rest_port is not None:
            from wgan_tf.serving.rest import RestServer

            try:
                self._rest = RestServer(self.registry, self.rest_port, **self.rest_options)
            except OSError as e:
                self._grpc.stop(0)
                raise ConfigError(f"cannot listen on REST port {self.rest_port}: "
                                  f"{e.strerror or e}") from e
            self.rest_port = self._rest.port
        try:
            self.registry.load_initial()
        except ConfigError:
            self.stop(grace=0)
            raise
        self._update_health()
        self.registry.start()
        return self

    def _update_health(self):
        status = (health_pb2.HealthCheckResponse.SERVING if self.registry.ready()
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for service in ("", PREDICTION_SERVICE):
            self._health.set(service, status)

    def stop(self, grace=5.0):
        self._health.enter_graceful_shutdown()
        if self._rest is not None:
            self._rest.stop()
        if self._grpc is not None:
            self._grpc.stop(grace).wait()
        self.registry.stop()
        if self.batcher is not None:
            self.batcher.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop(grace=0)
