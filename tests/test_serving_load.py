"""`wgan-tf serve` under load, run as users run it (a fresh process): request batching merges
concurrent gRPC and REST requests without changing a single pixel, a full queue and the RPC limit
refuse at once while the server keeps serving, REST threads and connections are bounded and a
slow client is dropped, and the Prometheus metrics parse and move with the traffic."""
import json
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from prometheus_client.parser import text_string_to_metric_families
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from helpers import WGAN_TF, user_env, wait_for, wgan_tf
from test_serving import base, free_port  # noqa: F401 (base: the model)
from wgan_tf.cli import build_parser
from wgan_tf.errors import ConfigError
from wgan_tf.serving import Client
from wgan_tf.serving.server import ModelServer, server_options

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "serving" / "monitoring.config"
METRICS = "/monitoring/prometheus/metrics"


class Serve:
    """``wgan-tf serve FLAGS`` on free ports, its log in a file; ready once the readiness
    endpoint says so."""

    def __init__(self, tmp_path, *flags, ready=True):
        self.port, self.rest_port = free_port(), free_port()
        self.log = tmp_path / f"serve-{self.port}.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [WGAN_TF, "serve", "--port", str(self.port), "--rest-port", str(self.rest_port),
                 *map(str, flags)], stdout=log, stderr=subprocess.STDOUT, env=user_env())
        self.address = f"localhost:{self.port}"
        if ready:
            wait_for(lambda: self.get("/v2/health/ready")[0] == 200, 120, "readiness",
                     self.process)

    def url(self, path):
        return f"http://localhost:{self.rest_port}{path}"

    def get(self, path):
        """(status, body) of a GET; (None, None) while nothing listens."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=10) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (ConnectionError, urllib.error.URLError):
            return None, None

    def metrics(self):
        """{(name, frozen labels): value} of every sample, parsed by prometheus_client."""
        status, text = self.get(METRICS)
        assert status == 200
        return {(s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(text.decode())
                for s in family.samples}

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        log = self.log.read_text()
        assert self.process.returncode == 0, log[-3000:]
        assert "Traceback" not in log, log[-3000:]


@pytest.fixture()
def serve(tmp_path):
    servers = []

    def start(*flags, **kwargs):
        servers.append(Serve(tmp_path, *flags, **kwargs))
        return servers[-1]
    yield start
    for server in servers:
        server.stop()


def batching_config(tmp_path, **fields):
    """A BatchingParameters text file with ``fields`` (lists: repeated fields)."""
    lines = []
    for key, value in fields.items():
        if isinstance(value, list):
            lines += [f"{key}: {v}" for v in value]
        else:
            value = str(value).lower() if isinstance(value, bool) else value
            lines.append(f"{key} {{ value: {value} }}")
    path = tmp_path / "batching.config"
    path.write_text("\n".join(lines) + "\n")
    return path


def predict_request(seeds):
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "wgan", "from_seeds"
    request.inputs["seeds"].CopyFrom(tf.make_tensor_proto(np.asarray(seeds, np.int64)))
    request.output_filter.append("images")
    return request


def _sample(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())), 0.0)


def test_merged_requests_give_the_same_images_as_alone(base, serve, tmp_path):
    """Three gRPC clients and one REST client at once: one execution, padded from 7 to 8 rows;
    every seed's image is bit for bit the one the model makes for that seed alone."""
    config = batching_config(tmp_path, max_batch_size=8, batch_timeout_micros=1_500_000,
                             num_batch_threads=1, allowed_batch_sizes=[4, 8])
    server = serve("--model-base-path", base, "--enable-batching", "--batching-parameters-file",
                   config, "--monitoring-config-file", MONITORING)
    from_seeds = tf.saved_model.load(str(base / "1")).signatures["from_seeds"]
    alone = {s: from_seeds(seeds=tf.constant([s], tf.int64))["images"].numpy()[0]
             for s in range(100, 107)}
    asks = {0: [100], 1: [101, 102], 2: [103]}  # gRPC; REST asks for 104..106
    clients = [Client(server.address) for _ in asks]
    for client in clients:
        client.status()  # connected before the clock starts
    before = server.metrics()

    def rest():
        body = json.dumps({"signature_name": "from_seeds", "instances": [104, 105, 106]})
        with urllib.request.urlopen(server.url("/v1/models/wgan:predict"), body.encode(),
                                    timeout=60) as answer:
            return np.array([row["images"] for row in json.loads(answer.read())["predictions"]],
                            np.uint8)
    with futures.ThreadPoolExecutor(4) as pool:
        grpc_answers = [pool.submit(clients[k].generate, len(seeds), seeds[0])
                        for k, seeds in asks.items()]
        rest_answer = pool.submit(rest)
        got = {s: image for k, seeds in asks.items()
               for s, image in zip(seeds, grpc_answers[k].result())}
        got.update(zip([104, 105, 106], rest_answer.result()))
    for client in clients:
        client.close()
    after = server.metrics()
    name = ":tensorflow:serving:batching_session:"
    assert _sample(after, name + "wrapped_run_count_total") - _sample(
        before, name + "wrapped_run_count_total") == 1  # all four in one execution
    assert _sample(after, name + "processed_batch_size_sum") - _sample(
        before, name + "processed_batch_size_sum") == 8  # 7 rows padded to 8
    for seed, image in got.items():
        np.testing.assert_array_equal(image, alone[seed], err_msg=f"seed {seed}")
    for entrypoint in ("GRPC", "REST"):  # TF Serving's latency histogram, by entrypoint
        assert _sample(after, ":tensorflow:serving:request_latency_count", model_name="wgan",
                       API="Predict" if entrypoint == "GRPC" else "predict",
                       entrypoint=entrypoint) >= 1


def test_metrics_parse_and_move_with_traffic(base, serve):
    server = serve("--model-base-path", base, "--monitoring-config-file", MONITORING)
    count = ":tensorflow:serving:request_count_total"
    before = server.metrics()
    with Client(server.address) as client:
        for _ in range(3):
            client.generate(2)
    with grpc.insecure_channel(server.address) as channel:
        with pytest.raises(grpc.RpcError):
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                predict_request(np.zeros((1, 2))), timeout=30)
    after = server.metrics()
    assert _sample(after, count, model_name="wgan", status="OK") - _sample(
        before, count, model_name="wgan", status="OK") == 3
    assert _sample(after, count, model_name="wgan", status="INVALID_ARGUMENT") - _sample(
        before, count, model_name="wgan", status="INVALID_ARGUMENT") == 1
    runtime = ":tensorflow:serving:runtime_latency_count"
    assert _sample(after, runtime, model_name="wgan", API="Predict", runtime="TF2") >= 3
    # TF Serving's buckets: microseconds, 10 * 1.8**i
    assert (":tensorflow:serving:request_latency_bucket", frozenset(
        {"model_name": "wgan", "API": "Predict", "entrypoint": "GRPC", "le": "18.0"}.items())) \
        in after


@pytest.fixture(scope="module")
def bounded(base, tmp_path_factory):
    """A server whose every bound is small: one batch of at most 4 that waits 1.5 s for company,
    2 RPCs at once, 2 REST threads and connections, 1 s for a REST request's headers."""
    tmp_path = tmp_path_factory.mktemp("bounded")
    config = batching_config(tmp_path, max_batch_size=4, batch_timeout_micros=1_500_000,
                             max_enqueued_batches=1, num_batch_threads=1)
    server = Serve(tmp_path, "--model-base-path", base, "--enable-batching",
                   "--batching-parameters-file", config, "--max-concurrent-rpcs", 2,
                   "--rest-threads", 2, "--rest-max-connections", 2, "--rest-timeout", 1)
    yield server
    server.stop()


def _timed_predict(stub, seeds):
    """(code name, seconds) of a Predict on a stub without retries."""
    started = time.monotonic()
    try:
        stub.Predict(predict_request(seeds), timeout=30)
        code = "OK"
    except grpc.RpcError as e:
        code = e.code().name
    return code, time.monotonic() - started


def test_full_queue_and_rpc_limit_refuse_at_once(bounded):
    with grpc.insecure_channel(bounded.address) as channel, futures.ThreadPoolExecutor(2) as pool:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        waiting = pool.submit(_timed_predict, stub, [1])  # opens the queue's one batch
        time.sleep(0.4)
        # 1 + 4 rows need a second batch, which the queue may not hold
        assert _timed_predict(stub, [1, 2, 3, 4]) == ("UNAVAILABLE", pytest.approx(0, abs=0.5))
        second = pool.submit(_timed_predict, stub, [2])  # joins the batch: 2 RPCs in the server
        time.sleep(0.4)
        assert _timed_predict(stub, [3]) == ("RESOURCE_EXHAUSTED", pytest.approx(0, abs=0.5))
        assert waiting.result()[0] == second.result()[0] == "OK"
        assert _timed_predict(stub, [1, 2, 3, 4])[0] == "OK"  # and it keeps serving


def test_slow_rest_client_is_dropped_while_others_are_served(bounded):
    answers = []

    def trickle():
        with socket.create_connection(("localhost", bounded.rest_port), timeout=10) as sock:
            sock.sendall(b"GET /v1/models/wgan HTTP/1.1\r\n")
            started = time.monotonic()
            try:
                for _ in range(100):  # a header byte every 0.1 s: 10 s if it were let through
                    sock.sendall(b"X")
                    sock.settimeout(0.1)
                    try:
                        data = sock.recv(1024)
                        answers.append((data, time.monotonic() - started))
                        return
                    except TimeoutError:
                        pass
            except ConnectionError:
                answers.append((b"", time.monotonic() - started))
    slow = threading.Thread(target=trickle)
    slow.start()
    time.sleep(0.2)
    started = time.monotonic()
    assert bounded.get("/v1/models/wgan")[0] == 200  # the other thread serves
    assert time.monotonic() - started < 0.5
    slow.join()
    data, elapsed = answers[0]
    assert data.startswith(b"HTTP/1.1 408 ") and elapsed < 2.0, (data, elapsed)


def test_rest_connections_over_the_limit_get_503_with_retry_after(bounded):
    idle = [socket.create_connection(("localhost", bounded.rest_port)) for _ in range(2)]
    try:
        time.sleep(0.2)  # both admitted: they hold the two threads, waiting for headers
        started = time.monotonic()
        status, body = bounded.get("/v1/models/wgan")
        assert status == 503 and "--rest-max-connections" in json.loads(body)["error"]
        assert time.monotonic() - started < 0.5
        with socket.create_connection(("localhost", bounded.rest_port), timeout=5) as sock:
            sock.sendall(b"GET /v1/models/wgan HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"\r\nRetry-After: 1\r\n" in sock.recv(4096)
    finally:
        for sock in idle:
            sock.close()
    wait_for(lambda: bounded.get("/v1/models/wgan")[0] == 200, 10, "a free connection")


def test_client_retries_unavailable_and_resource_exhausted():
    """The client's retry policy, against a stub server that refuses twice, then answers."""
    calls = []

    class Refusing(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            calls.append(time.monotonic())
            if len(calls) == 1:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy")
            if len(calls) == 2:
                context.abort(grpc.StatusCode.UNAVAILABLE, "queue full")
            response = predict_pb2.PredictResponse()
            response.outputs["images"].CopyFrom(tf.make_tensor_proto(
                np.zeros((1, 2, 2, 3), np.uint8)))
            return response
    server = grpc.server(futures.ThreadPoolExecutor(2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Refusing(), server)
    port = server.add_insecure_port("localhost:0")
    server.start()
    try:
        with Client(f"localhost:{port}", timeout=30) as client:
            assert client.generate(1).shape == (1, 2, 2, 3)
    finally:
        server.stop(0)
    assert len(calls) == 3


BAD_FLAGS = [
    (["--model-config-file", "serving/models.config", "--model-base-path", "x"],
     "give --model-config-file or --model-base-path"),
    (["--batching-parameters-file", "serving/batching.config"], "needs --enable-batching"),
    (["--monitoring-config-file", "serving/monitoring.config"], "give --rest-port too"),
    (["--enable-batching", "--batching-parameters-file", "serving/models.config"],
     "is not a text-format tensorflow.serving.BatchingParameters"),
    (["--model-config-file", "serving/batching.config"],
     "is not a text-format tensorflow.serving.ModelServerConfig"),
    (["--monitoring-config-file", "nowhere.config", "--rest-port", "0"],
     "cannot read nowhere.config"),
]


@pytest.mark.parametrize("flags,message", BAD_FLAGS)
def test_bad_serving_flags(flags, message, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = build_parser().parse_args(["serve", *flags])
    with pytest.raises(ConfigError, match=message):
        ModelServer(**server_options(args))


def test_bad_serving_flags_are_one_line():
    """As the command says it (the other refusals take the same path)."""
    for flags, message in (BAD_FLAGS[0], (["--max-concurrent-rpcs", "0"],
                                          "--max-concurrent-rpcs must be at least 1")):
        result = wgan_tf("serve", "--port", free_port(), *flags, check=False, cwd=ROOT,
                         timeout=120)
        assert result.returncode == 2, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("wgan-tf serve: error: ") and message in last, last
        assert "Traceback" not in result.stderr
