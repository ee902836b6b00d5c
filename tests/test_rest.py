"""TF Serving's REST API of the Python server: answers, refusals, and a fuzz of `wgan-tf serve`.

Every request the server cannot take must get a JSON ``{"error": ...}`` with its 4xx status, over
a connection that stays well-formed HTTP; and no request may change what the model answers to
anyone (an earlier bug: one malformed REST request broke the model for gRPC and REST clients).
"""
import base64
import http.client
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format
from PIL import Image
from tensorflow_serving.apis import get_model_metadata_pb2

from test_serving import (LATENT, base, free_port,  # noqa: F401 (base: the model)
                          grpc_metadata)
from wgan_tf.errors import ConfigError
from wgan_tf.serving import Client
from wgan_tf.serving.rest import MIN_BODY_BYTES, default_max_body_bytes
from wgan_tf.serving.server import ModelServer

MAX_BATCH = 64


@pytest.fixture(scope="module")
def server(base):
    with ModelServer(base, port=0, rest_port=0, max_batch=MAX_BATCH, rest_timeout=0.5) as s:
        yield s


class _Autoencoder(tf.Module):
    """The signatures an autoencoder export adds (uint8 images in and out, PNG bytes), and a
    string input, over fixed maps: enough to test the JSON <-> dtype conversion."""

    images = tf.TensorSpec([None, 4, 4, 1], tf.uint8, "images")

    @tf.function(input_signature=[images])
    def encode(self, images):
        return {"latent": tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2])}

    @tf.function(input_signature=[images])
    def reconstruct(self, images):
        png = tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)
        return {"images": images, "png_bytes": png}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, "text")])
    def length(self, text):
        return {"length": tf.strings.length(text), "echo_bytes": text}


@pytest.fixture(scope="module")
def autoencoder(tmp_path_factory):
    path = tmp_path_factory.mktemp("autoencoder") / "ae"
    module = _Autoencoder()
    tf.saved_model.save(module, str(path / "1"), signatures={
        "encode": module.encode, "reconstruct": module.reconstruct, "serving_default": module.length})
    with ModelServer(path, port=0, rest_port=0, model_name="ae") as s:
        yield s


def _request(port, data, method="POST", shut=False, timeout=10):
    """Send raw bytes; return (status, headers, body) of the answer, parsed by http.client."""
    with socket.create_connection(("localhost", port), timeout=timeout) as sock:
        sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


def _http(method, path, body=None, headers=()):
    """The bytes of an HTTP/1.1 request; a ``body`` gets its Content-Length unless given."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", *headers]
    if body is not None and not any(h.lower().startswith("content-length") for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + (body or b"")


def _post(port, body, path="/v1/models/wgan:predict"):
    status, _, payload = _request(port, _http("POST", path, body))
    return status, json.loads(payload)


def _get(port, path):
    status, _, payload = _request(port, _http("GET", path), method="GET")
    return status, json.loads(payload)


def _is_json_error(status, headers, body):
    """Whether an answer is a 4xx with a JSON body ``{"error": "..."}``."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return False
    return (isinstance(status, int) and 400 <= status < 500 and isinstance(error, str)
            and headers.get("Content-Type") == "application/json")


def _what_the_model_answers(server):
    """Images over gRPC and REST, and the metadata over both, for one fixed request."""
    with Client(f"localhost:{server.port}") as client:
        images = client.generate(3, seed=11)
    status, answer = _post(server.rest_port, {"signature_name": "from_seeds",
                                              "instances": [11, 12, 13]})
    assert status == 200, answer
    rest_images = np.array([row["images"] for row in answer["predictions"]], np.uint8)
    np.testing.assert_array_equal(rest_images, images)
    return (images, grpc_metadata(server.port),
            _get(server.rest_port, "/v1/models/wgan/metadata"))


BREAKERS = [  # requests that once broke the model for everyone (inputs map grew a key "a")
    {"signature_name": "from_seeds", "instances": {"a": 1}},
    {"signature_name": "from_seeds", "inputs": {"a": 1}},
    {"signature_name": "from_seeds", "instances": [{"a": 1}]},
    {"signature_name": "from_seeds", "instances": [{"seeds": 1, "a": 2}]},
    {"instances": {"z": [0.0] * LATENT}},
]


def test_malformed_request_leaves_the_model_intact(server):
    before = _what_the_model_answers(server)
    for body in BREAKERS:
        status, answer = _post(server.rest_port, body)
        assert status == 400 and "error" in answer, (body, answer)
    images, (spec, signatures), rest_metadata = _what_the_model_answers(server)
    np.testing.assert_array_equal(images, before[0])
    assert (spec, signatures) == before[1] and rest_metadata == before[2]
    assert set(signatures.signature_def["from_seeds"].inputs) == {"seeds"}


def test_metadata_is_tf_serving_json(server):
    status, answer = _get(server.rest_port, "/v1/models/wgan/metadata")
    assert status == 200
    assert answer == _get(server.rest_port, "/v1/models/wgan/versions/1/metadata")[1]
    assert answer["model_spec"] == {"name": "wgan", "signature_name": "", "version": "1"}
    signatures = answer["metadata"]["signature_def"]["signature_def"]
    seeds = signatures["from_seeds"]["inputs"]["seeds"]
    assert seeds["dtype"] == "DT_INT64"
    assert seeds["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    assert signatures["serving_default"]["method_name"] == "tensorflow/serving/predict"
    parsed = json_format.ParseDict(answer["metadata"]["signature_def"],
                                   get_model_metadata_pb2.SignatureDefMap())
    assert parsed == grpc_metadata(server.port)[1]
    assert _get(server.rest_port, "/v1/models/wgan/versions/2/metadata")[0] == 404


PREDICT = "/v1/models/wgan:predict"
SEEDS = {"signature_name": "from_seeds"}
REFUSALS = {  # name: (raw request, status)
    "not JSON": (_http("POST", PREDICT, b"{"), 400),
    "empty body": (_http("POST", PREDICT, b""), 400),
    "not UTF-8": (_http("POST", PREDICT, b'{"instances": ["\xff"]}'), 400),
    "top-level array": (_http("POST", PREDICT, []), 400),
    "top-level null": (_http("POST", PREDICT, b"null"), 400),
    "top-level string": (_http("POST", PREDICT, b'"seeds"'), 400),
    "no instances or inputs": (_http("POST", PREDICT, SEEDS), 400),
    "instances and inputs": (_http("POST", PREDICT, {**SEEDS, "instances": [1], "inputs": [1]}),
                             400),
    "signature name not a string": (_http("POST", PREDICT, {"signature_name": 5,
                                                            "instances": [1]}), 400),
    "unknown signature": (_http("POST", PREDICT, {"signature_name": "nope", "instances": [1]}),
                          400),
    "empty instances": (_http("POST", PREDICT, {**SEEDS, "instances": []}), 400),
    "seed 1e30": (_http("POST", PREDICT, {**SEEDS, "instances": [1e30]}), 400),
    "seed 2**63": (_http("POST", PREDICT, {**SEEDS, "instances": [2 ** 63]}), 400),
    "seed -2**63-1": (_http("POST", PREDICT, {**SEEDS, "instances": [-2 ** 63 - 1]}), 400),
    "seed 1.5": (_http("POST", PREDICT, {**SEEDS, "instances": [1.5]}), 400),
    "seed true": (_http("POST", PREDICT, {**SEEDS, "instances": [True]}), 400),
    "seed string": (_http("POST", PREDICT, {**SEEDS, "instances": ["1"]}), 400),
    "seed NaN": (_http("POST", PREDICT, b'{"signature_name": "from_seeds", "instances": [NaN]}'),
                 400),
    "latent Infinity": (_http("POST", PREDICT, b'{"instances": [[%s]]}' % b", ".join(
        [b"Infinity"] + [b"0"] * (LATENT - 1))), 400),
    "latent 1e400": (_http("POST", PREDICT, b'{"instances": [[%s]]}' % b", ".join(
        [b"-1e400"] + [b"0"] * (LATENT - 1))), 400),
    "latent beyond float32": (_http("POST", PREDICT, {"instances": [[1e39] + [0] * (LATENT - 1)]}),
                              400),
    "latent ragged": (_http("POST", PREDICT, {"instances": [[0.0] * LATENT, [0.0] * 3]}), 400),
    "latent too deep": (_http("POST", PREDICT, {"instances": [[[0.0] * LATENT]]}), 400),
    "latent too wide": (_http("POST", PREDICT, {"instances": [[0.0] * (LATENT + 1)]}), 400),
    "deep nesting": (_http("POST", PREDICT, b'{"instances": ' + b"[" * 100000 + b"]" * 100000
                           + b"}"), 400),
    "too many samples": (_http("POST", PREDICT, {**SEEDS, "instances": list(range(MAX_BATCH + 1))}),
                         400),
    "unknown model": (_http("POST", "/v1/models/bedrooms:predict", {**SEEDS, "instances": [1]}),
                      404),
    "unknown version": (_http("POST", "/v1/models/wgan/versions/7:predict", SEEDS), 404),
    "version beyond int64": (_http("GET", "/v1/models/wgan/versions/9999999999999999999"), 404),
    "unknown status": (_http("GET", "/v1/models/bedrooms"), 404),
    "unknown path": (_http("GET", "/v2/nothing"), 404),
    "unknown verb": (_http("POST", "/v1/models/wgan:classify", SEEDS), 404),
    "GET predict": (_http("GET", PREDICT), 405),
    "POST status": (_http("POST", "/v1/models/wgan", SEEDS), 405),
    "POST metadata": (_http("POST", "/v1/models/wgan/metadata", b"{}"), 405),
    "DELETE": (_http("DELETE", "/v1/models/wgan"), 405),
    "PUT": (_http("PUT", PREDICT, SEEDS), 405),
    "PATCH": (_http("PATCH", "/v1/models/wgan/metadata", b"{}"), 405),
    "OPTIONS": (_http("OPTIONS", PREDICT), 405),
    "made-up method": (_http("BREW", "/v1/models/wgan"), 405),
    "no Content-Length": (_http("POST", PREDICT), 411),
    "chunked": (_http("POST", PREDICT, headers=["Transfer-Encoding: chunked"]) + b"0\r\n\r\n",
                411),
    "Content-Length 100 GB": (_http("POST", PREDICT, headers=["Content-Length: 100000000000"]),
                              413),
    "Content-Length of 50 digits": (_http("POST", PREDICT, headers=["Content-Length: " + "9" * 50]),
                                    413),
    "Content-Length not a number": (_http("POST", PREDICT, headers=["Content-Length: 1e3"]), 400),
    "Content-Length negative": (_http("POST", PREDICT, headers=["Content-Length: -1"]), 400),
    "two Content-Lengths": (_http("POST", PREDICT, b"{}", headers=["Content-Length: 2",
                                                                  "Content-Length: 3"]), 400),
    "header line too long": (_http("GET", "/v1/models/wgan", headers=["X: " + "a" * 70000]), 431),
    "too many headers": (_http("GET", "/v1/models/wgan", headers=["X: a"] * 101), 431),
    "request line too long": (_http("GET", "/" + "a" * 70000), 414),
    "garbage request line": (b"\x00\xffhello there\x7f\r\n\r\n", 400),
    "bad version": (b"GET /v1/models/wgan HTTP/1.x\r\n\r\n", 400),
    "HTTP/0.9": (b"GET /v1/models/wgan\r\n\r\n", 400),
}


@pytest.mark.parametrize("name", REFUSALS)
def test_refusals_are_json(server, name):
    data, expected = REFUSALS[name]
    status, headers, body = _request(server.rest_port, data)
    assert status == expected, body
    assert _is_json_error(status, headers, body), (headers, body)
    assert headers["Connection"] == "close"
    if status == 405:
        assert headers["Allow"] in ("GET", "POST")


def test_head_and_keep_alive(server):
    status, headers, body = _request(server.rest_port, _http("HEAD", PREDICT), method="HEAD")
    assert (status, headers["Allow"], headers["Content-Type"], body) == (
        405, "POST", "application/json", b"")
    connection = http.client.HTTPConnection("localhost", server.rest_port, timeout=10)
    for _ in range(2):  # one connection, several requests (HTTP/1.1 keep-alive)
        connection.request("POST", PREDICT, json.dumps({**SEEDS, "instances": [1]}))
        response = connection.getresponse()
        assert response.status == 200 and not response.will_close
        response.read()
    connection.request("POST", PREDICT, b"{")
    response = connection.getresponse()
    assert response.status == 400 and response.will_close
    connection.close()


def test_body_cap_and_timeouts(base):
    with ModelServer(base, port=0, rest_port=0, rest_max_body_bytes=100, rest_timeout=0.5) as s:
        assert _post(s.rest_port, {**SEEDS, "instances": [1, 2]})[0] == 200
        status, answer = _post(s.rest_port, {**SEEDS, "instances": list(range(40))})
        assert status == 413 and "100" in answer["error"]
        announced = _http("POST", PREDICT, headers=["Content-Length: 60"])
        started = time.monotonic()
        stalled = [  # all answered 408 once the 0.5 s are up
            announced + b'{"instances"',  # body stalls
            b"GET /v1/models/wgan HTTP/1.1\r\nHost: localhost\r\n",  # headers stall
        ]
        for data in stalled:
            status, headers, body = _request(s.rest_port, data)
            assert status == 408 and _is_json_error(status, headers, body)
        with socket.create_connection(("localhost", s.rest_port), timeout=0.1) as sock:
            sock.sendall(announced)
            for _ in range(60):  # a byte every 0.1 s: the 0.5 s are for the whole body
                sock.sendall(b" ")
                try:
                    answer = sock.recv(65536)
                    break
                except TimeoutError:
                    pass
            assert answer.startswith(b"HTTP/1.1 408 ")
        with socket.create_connection(("localhost", s.rest_port), timeout=10) as sock:
            assert sock.recv(1) == b""  # a silent client is disconnected, unanswered
        assert time.monotonic() - started < 8
        assert _post(s.rest_port, {**SEEDS, "instances": [1]})[0] == 200
    for bad in ({"rest_max_body_bytes": 0}, {"rest_timeout": 0}):
        with pytest.raises(ConfigError):
            ModelServer(base, port=0, rest_port=0, **bad)


def test_expect_100_continue_only_for_a_body_that_will_be_read(base):
    """curl sends ``Expect: 100-continue`` for large bodies: the client hears Continue only once
    the path, model and size are accepted, else the refusal at once."""
    with ModelServer(base, port=0, rest_port=0, rest_max_body_bytes=100) as s:
        with socket.create_connection(("localhost", s.rest_port), timeout=10) as sock:
            sock.sendall(_http("POST", PREDICT, headers=["Content-Length: 1000",
                                                         "Expect: 100-continue"]))
            assert sock.recv(65536).startswith(b"HTTP/1.1 413 ")
        body = json.dumps({**SEEDS, "instances": [1]}).encode()
        with socket.create_connection(("localhost", s.rest_port), timeout=10) as sock:
            sock.sendall(_http("POST", PREDICT, headers=[f"Content-Length: {len(body)}",
                                                         "Expect: 100-continue"]))
            assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(body)
            response = http.client.HTTPResponse(sock, method="POST")
            response.begin()
            assert response.status == 200 and json.loads(response.read())["predictions"]


def test_stop_ends_idle_keep_alive_connections(base):
    s = ModelServer(base, port=0, rest_port=0).start()
    try:
        connection = http.client.HTTPConnection("localhost", s.rest_port, timeout=10)
        connection.request("GET", "/v1/models/wgan")
        assert connection.getresponse().read() and connection.sock is not None
    finally:
        s.stop()
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        connection.request("GET", "/v1/models/wgan")
        connection.getresponse()
    connection.close()


def test_default_body_cap_fits_the_largest_request(server):
    servable = server.manager.servable()
    assert default_max_body_bytes(servable) == MIN_BODY_BYTES  # a tiny model: the floor
    big = types.SimpleNamespace(signatures=servable.signatures, max_batch=16384)
    cap = default_max_body_bytes(big)
    assert cap > MIN_BODY_BYTES
    latent = np.random.default_rng(0).normal(size=(16384, LATENT)).astype(np.float32) * 1e-30
    worst = {"instances": latent.tolist(), "signature_name": "serving_default"}
    assert len(json.dumps(worst, indent=2)) <= cap  # pretty-printed full-precision floats fit
    seeds = {"signature_name": "from_seeds", "instances": [-2 ** 63] * 16384}
    assert len(json.dumps(seeds, indent=2)) <= cap
    # A request of --max-batch full-precision latent vectors is answered, not refused.
    status, answer = _post(server.rest_port, {"instances": latent[:MAX_BATCH].tolist()})
    assert status == 200 and len(answer["predictions"]) == MAX_BATCH


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl")
def test_readme_rest_commands(server):
    """The curl commands of serving/README.md, run as written (on this server's port)."""
    readme = (Path(__file__).resolve().parents[1] / "serving" / "README.md").read_text()
    block = readme.split("Over REST:")[1].split("```bash")[1].split("```")[0]
    commands = [line.split("  #")[0] for line in block.replace("\\\n", " ").splitlines()]
    commands = [c.replace("localhost:8501", f"localhost:{server.rest_port}") for c in commands if c]
    assert len(commands) == 4
    for command in commands:
        done = subprocess.run(command, shell=True, capture_output=True, timeout=60, check=True)
        assert "error" not in json.loads(done.stdout), command


def _ae_predict(server, body):
    return _post(server.rest_port, body, path="/v1/models/ae:predict")


def test_inputs_follow_the_signature_dtypes(autoencoder):
    images = np.arange(2 * 16, dtype=np.uint8).reshape(2, 4, 4, 1) * 8
    status, answer = _ae_predict(autoencoder, {"signature_name": "reconstruct",
                                               "instances": images.tolist()})
    assert status == 200, answer
    np.testing.assert_array_equal([row["images"] for row in answer["predictions"]], images)
    png = base64.b64decode(answer["predictions"][1]["png_bytes"]["b64"])
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png)))[..., None], images[1])
    status, answer = _ae_predict(autoencoder, {"signature_name": "encode",
                                               "inputs": {"images": images.tolist()}})
    assert status == 200
    np.testing.assert_allclose(answer["outputs"], images.mean(axis=(1, 2)))
    for wrong in (300, -1, 1.5, True, "7", None, {"b64": "AA=="}):
        bad = images.tolist()
        bad[1][2][3][0] = wrong
        status, answer = _ae_predict(autoencoder, {"signature_name": "encode", "instances": bad})
        assert status == 400 and "uint8" in answer["error"], (wrong, answer)
    bad = images.tolist()
    bad[1][2] = bad[1][2][:3]  # ragged
    assert _ae_predict(autoencoder, {"signature_name": "encode", "instances": bad})[0] == 400
    text = ["wasserstein", "é", {"b64": base64.b64encode(b"\xff\x00").decode()}]
    status, answer = _ae_predict(autoencoder, {"instances": text})
    assert status == 200, answer
    assert [row["length"] for row in answer["predictions"]] == [11, 2, 2]
    assert [base64.b64decode(row["echo_bytes"]["b64"]) for row in answer["predictions"]] == [
        b"wasserstein", "é".encode(), b"\xff\x00"]
    for wrong in (5, None, ["a"], {"b64": "not base64!"}, {"b64": "AA==", "x": 1}):
        status, answer = _ae_predict(autoencoder, {"instances": ["a", wrong]})
        assert status == 400, (wrong, answer)


# The fuzz: a few hundred malformed requests against the real command, then the same answers.

def _random_json(rng, depth=3):
    kind = rng.randrange(9 if depth else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, -1, 7, 2 ** 63, -2 ** 63 - 1, 10 ** 30, rng.randrange(-999, 999)])
    if kind == 3:
        return rng.choice([0.5, -1e-300, 1e30, 1e39, -3.4e38, rng.uniform(-2, 2)])
    if kind in (4, 5):
        return "".join(rng.choice("ab\"\\é\u2028\x00{[") for _ in range(rng.randrange(6)))
    if kind in (6, 7):
        return [_random_json(rng, depth - 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["seeds", "latent", "a", "b64", ""]): _random_json(rng, depth - 1)
            for _ in range(rng.randrange(3))}


def _fits(value, dtype):
    """Whether ``value`` is a valid JSON value of ``dtype`` ("int64" or "float32")."""
    if dtype == "int64":
        return type(value) is int and -2 ** 63 <= value < 2 ** 63
    return type(value) in (int, float) and abs(value) <= 3.4e38


GOOD = [  # (body, dtype of its values)
    ({"signature_name": "from_seeds", "instances": [1, 2, 3]}, "int64"),
    ({"signature_name": "from_seeds", "inputs": [4, 5]}, "int64"),
    ({"instances": [[0.1] * LATENT, [-0.2] * LATENT]}, "float32"),
    ({"signature_name": "serving_default", "inputs": {"latent": [[0.3] * LATENT]}}, "float32"),
]


def _mutated_body(rng):
    """A request body that is wrong in one random way; never a valid request."""
    body, dtype = GOOD[rng.randrange(len(GOOD))]
    body = json.loads(json.dumps(body))
    key = "instances" if "instances" in body else "inputs"
    mutation = rng.randrange(10)
    if mutation == 0:  # a value of the wrong type or range, anywhere in the tensor
        value = _random_json(rng)
        while _fits(value, dtype):
            value = _random_json(rng)
        holder = body[key]["latent"] if isinstance(body[key], dict) else body[key]
        if dtype == "float32":
            holder = holder[rng.randrange(len(holder))]
        holder[rng.randrange(len(holder))] = value
    elif mutation == 1:
        del body[key]
    elif mutation == 2:
        body["inputs" if key == "instances" else "instances"] = body[key]
    elif mutation == 3:
        body["signature_name"] = rng.choice([None, 5, [], {}, "nope", "from_seeds ", "__init__"])
    elif mutation == 4:
        body = rng.choice([[], None, "x", 3, [body], True])
    elif mutation == 5:  # tensors that are not tensors: objects naming other inputs, scalars
        body[key] = rng.choice([{"a": _random_json(rng)}, {"seeds": 1, "latent": 2}, "x", None,
                                {"latent": [[0.0] * LATENT]} if dtype == "int64" else {"seeds": [1]}])
    elif mutation == 6:  # shapes
        body[key] = ([[1, 2]], [[[3]]], [[]], []) if dtype == "int64" else (
            [[0.0] * (LATENT - 1)], [[0.0] * LATENT, [0.0]], [[[0.0] * LATENT]], [0.0] * LATENT)
        body[key] = rng.choice(body[key])
    elif mutation == 7:
        body[key] = list(range(MAX_BATCH + 1)) if dtype == "int64" else [[0.0] * LATENT] * (
            MAX_BATCH + 1)
    text = json.dumps(body).encode()
    if mutation == 8:  # cut short
        return text[:rng.randrange(len(text) - 1)]
    if mutation == 9:  # a number that JSON does not have, or bytes that are not UTF-8
        for token in (b"1", b"2", b"3", b"0.1", b"0.3", b"4"):
            if token in text:
                return text.replace(token, rng.choice([b"NaN", b"Infinity", b"-Infinity",
                                                       b"1e999", b"\"\xff\""]), 1)
    return text


def _fuzz_cases(rng):
    """(label, bytes to send, how the client ends) for a few hundred malformed requests.

    ``answer``: read the answer; ``half``: half-close after sending (a truncated body), then
    read; ``close``: close at once, no answer expected (the server must just survive it).
    """
    paths = ["/v1/models/wgan", "/v1/models/wgan/metadata", PREDICT,
             "/v1/models/wgan/versions/1", "/v1/models/wgan/versions/1:predict"]
    cases = [("json", _http("POST", PREDICT, _mutated_body(rng)), "answer") for _ in range(160)]
    for _ in range(30):
        method = rng.choice(["DELETE", "PUT", "PATCH", "OPTIONS", "TRACE", "CONNECT", "GET",
                             "POST", "X" + str(rng.randrange(100))])
        path = rng.choice(paths)
        if (method == "POST") == path.endswith(":predict"):
            method = "DELETE"
        cases.append(("method", _http(method, path, b"{}" if rng.random() < 0.5 else None),
                      "answer"))
    alphabet = "abcxyz019._-~%20/:"
    for _ in range(30):  # the alphabet cannot spell "wgan": none of these paths exists
        tail = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 30)))
        path = rng.choice(["/", "/v1/", "/v1/models/", "/v1/models/wgan/", "/v2/models/wgan"])
        cases.append(("path", _http(rng.choice(["GET", "POST"]), path + tail, b"{}"), "answer"))
    for _ in range(20):
        body = json.dumps(GOOD[0][0]).encode()
        cut = rng.randrange(len(body))
        cases.append(("truncated", _http("POST", PREDICT, body[:cut], headers=[
            f"Content-Length: {len(body)}"]), "half"))
    for _ in range(20):
        length = rng.choice(["100000000000", "9" * rng.randrange(20, 60), str(2 ** 64), "-5",
                             "0x10", "1.5", "", "12 34", str(100_001)])
        cases.append(("length", _http("POST", PREDICT, headers=[f"Content-Length: {length}"]),
                      "answer"))
    for _ in range(6):
        cases.append(("length", _http("POST", PREDICT, b" " * 100_001), "answer"))
        cases.append(("length", _http("POST", PREDICT, b"{}", headers=[
            "Transfer-Encoding: chunked"]), "answer"))
    for _ in range(10):
        headers = (["X-Long: " + "a" * rng.randrange(65537, 80000)] if rng.random() < 0.5
                   else [f"X-{i}: {i}" for i in range(rng.randrange(101, 150))])
        cases.append(("headers", _http("GET", "/v1/models/wgan", headers=headers), "answer"))
    for _ in range(30):
        line = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
        line = line.replace(b"\r", b"").replace(b"\n", b"") + b"!"
        words = line.decode("latin-1").split()
        if len(words) == 3 and words[2].startswith("HTTP/"):
            continue  # (not garbage enough)
        cases.append(("garbage", line + b"\r\n\r\n", "answer"))
    cases.append(("garbage", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", "answer"))
    cases.append(("garbage", b"GET /v1/models/wgan\r\n\r\n", "answer"))  # HTTP/0.9
    for _ in range(10):
        cut = _http("POST", PREDICT, GOOD[0][0])
        cases.append(("closed", cut[:rng.randrange(len(cut))], "close"))
    return cases


def _send(port, data, end):
    """Send one case; the (status, headers, body) answered, or None for a client that left."""
    with socket.create_connection(("localhost", port), timeout=20) as sock:
        try:
            sock.sendall(data)
        except ConnectionError:  # refused before all was sent: the answer may still be there
            pass
        if end == "close":
            return None
        if end == "half":
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


def _rss_bytes(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _acceptable(label, result):
    """A 4xx JSON answer; 408 only where the client stalled or cut its body short."""
    if not _is_json_error(*result):
        return False
    if label == "stall":
        return result[0] == 408
    return result[0] != 408 or label == "truncated"


STALLS = [  # (label, data, end): 1 s each, run beside the other cases
    ("stall", _http("POST", PREDICT, headers=["Content-Length: 50"]) + b"{", "answer"),
    ("stall", b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nHost: localhost\r\n", "answer"),
]


def test_fuzz_serve_command(base, tmp_path, capsys):
    grpc_port, rest_port = free_port(), free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "wgan_tf.cli", "serve", "--model-base-path", str(base),
             "--port", str(grpc_port), "--rest-port", str(rest_port),
             "--max-batch", str(MAX_BATCH), "--rest-max-body-bytes", "100000",
             "--rest-timeout", "1"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        with Client(f"localhost:{grpc_port}") as client:
            client.wait_until_ready(120)
            deadline = time.monotonic() + 60
            while True:  # REST listens a moment after gRPC
                try:
                    assert _get(rest_port, "/v1/models/wgan")[0] == 200
                    break
                except ConnectionRefusedError:
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
            ask = {"signature_name": "from_seeds", "instances": [21, 22]}
            grpc_before, rest_before = client.generate(2, seed=21), _post(rest_port, ask)
            rss_before = _rss_bytes(server.pid)

            results = []  # (label, answer or None), from this thread and the stalls' threads

            def send(label, data, end):
                try:
                    results.append((label, _send(rest_port, data, end)))
                except (OSError, http.client.HTTPException) as e:
                    results.append((label, ("no answer", {}, repr(e).encode())))
            stalls = [threading.Thread(target=send, args=case) for case in STALLS]
            for thread in stalls:
                thread.start()
            cases = _fuzz_cases(random.Random(0))
            for case in cases:
                send(*case)
            for thread in stalls:
                thread.join()

            grpc_after, rest_after = client.generate(2, seed=21), _post(rest_port, ask)
            same = rest_after == rest_before and np.array_equal(grpc_after, grpc_before)
            alive, grown = server.poll() is None, _rss_bytes(server.pid) - rss_before
        sent = len(cases) + len(STALLS)
        answers = [(label, result) for label, result in results if result is not None]
        wrong = [(label, result) for label, result in answers if not _acceptable(label, result)]
        with capsys.disabled():
            print(f"\nfuzz: {sent} malformed requests sent; {len(answers) - len(wrong)} answered "
                  f"4xx with a JSON error, {len(wrong)} otherwise, {sent - len(answers)} closed "
                  f"by the client before an answer; server alive: {alive}; the same image over "
                  f"gRPC and REST after: {same}; memory grown by {grown / 2 ** 20:.0f} MiB")
        assert not wrong, wrong[:5]
        assert len(answers) == sent - sum(end == "close" for *_, end in cases) and sent >= 300
        assert alive and same and grown < 200 * 2 ** 20
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    log = log_path.read_text()
    assert server.returncode == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
