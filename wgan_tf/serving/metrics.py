"""Prometheus metrics of ``wgan-tf serve``, with TF Serving's names, labels and buckets.

TF Serving names its metrics ``/tensorflow/serving/...`` and its Prometheus exporter writes them
with ``/`` turned into ``:`` (``util/prometheus_exporter.cc``); the definitions below copy
``servables/tensorflow/util.cc`` (request count, request and runtime latency),
``batching/batching_session.cc`` (queueing latency, wrapped runs) and
``batching/batching_util.h`` (input, processed and padding batch sizes): the same label names,
latencies in microseconds, and the same exponential buckets (``Buckets::Exponential(scale,
growth, count)``: ``count`` bounds ``scale * growth**i``, then +Inf).

One difference, from the library: prometheus_client writes a counter as ``NAME_total`` (the
OpenMetrics rule it enforces), so ``:tensorflow:serving:request_count`` is queried as
``:tensorflow:serving:request_count_total`` here.
"""
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

DEFAULT_PATH = "/monitoring/prometheus/metrics"  # PrometheusExporter::kPrometheusPath
CONTENT_TYPE = CONTENT_TYPE_LATEST


def exponential(scale, growth, count):
    """TF's ``monitoring::Buckets::Exponential`` bounds (prometheus_client adds +Inf)."""
    return [scale * growth ** i for i in range(count)]


LATENCY_BUCKETS = exponential(10, 1.8, 33)  # microseconds, up to ~20 minutes
QUEUING_BUCKETS = exponential(100, 1.2, 52)  # microseconds, up to ~1 second
BATCH_SIZE_BUCKETS = exponential(1, 2, 14)


class Metrics:
    """The server's metrics, in a registry of their own (several servers may share a process)."""

    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.request_count = Counter(
            ":tensorflow:serving:request_count", "The total number of requests.",
            ["model_name", "status"], registry=r)
        self.request_latency = Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.runtime_latency = Histogram(
            ":tensorflow:serving:runtime_latency",
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            ["model_name", "API", "runtime"], buckets=LATENCY_BUCKETS, registry=r)
        self.queuing_latency = Histogram(
            ":tensorflow:serving:batching_session:queuing_latency",
            "Distribution of wall time spent (in microseconds) in queuing",
            ["thread_pool_name"], buckets=QUEUING_BUCKETS, registry=r)
        self.wrapped_run_count = Counter(
            ":tensorflow:serving:batching_session:wrapped_run_count",
            "Total count of run calls on the wrapped session", registry=r)
        self.input_batch_size = Histogram(
            ":tensorflow:serving:batching_session:input_batch_size",
            "Tracks the batch size distribution on the inputs.",
            buckets=BATCH_SIZE_BUCKETS, registry=r)
        self.processed_batch_size = Histogram(
            ":tensorflow:serving:batching_session:processed_batch_size",
            "Tracks the batch size distribution on processing.",
            buckets=BATCH_SIZE_BUCKETS, registry=r)
        self.padding_size = Histogram(
            ":tensorflow:serving:batching_session:padding_size",
            "Tracks the padding size distribution on batches.",
            ["execution_batch_size"], buckets=BATCH_SIZE_BUCKETS, registry=r)
        # Not in TF Serving: what an operator of this server needs to see load being shed.
        self.in_flight = Gauge(
            "wgan_tf_serving_in_flight_requests",
            "Requests being answered now, by entrypoint.", ["entrypoint"], registry=r)
        self.rest_connections_refused = Counter(
            "wgan_tf_serving_rest_connections_refused",
            "REST connections answered 503 because --rest-max-connections were open.",
            registry=r)

    def text(self):
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
