"""TF Serving's REST API over the same servables as gRPC, on the standard library's http.server.

- ``GET /v1/models/NAME[/versions/N | /labels/LABEL]``: model status (JSON of
  GetModelStatusResponse; a version still loading is ``LOADING``, as in TF Serving)
- ``GET /v1/models/NAME[/versions/N | /labels/LABEL]/metadata``: the signatures, written as TF
  Serving writes them (``{"model_spec": ..., "metadata": {"signature_def": {"signature_def":
  {...}}}}``), and a conditional model's ``"class_names": [...]`` beside ``signature_def``
- ``POST /v1/models/NAME[/versions/N | /labels/LABEL]:predict`` with ``{"signature_name": ...,
  "instances": [...]}`` (row format, answered with ``predictions``) or ``{"inputs": ...}``
  (columnar, answered with ``outputs``).
- ``GET /v2/health/ready``: 200 once every configured model's newest version is loaded and warmed
  up, else 503; ``GET /v2/health/live``: 200 while the process answers (the paths of the Open
  Inference Protocol that KServe and Triton probe); ``GET`` the monitoring config's path:
  Prometheus metrics.
- Beside TF Serving's API, the web page (``page.py``): ``GET /`` and its files, ``GET
  /page/models``, and ``POST /png/v1/models/...:predict``, a predict answered with one PNG grid.

JSON becomes tensors by the signature's dtypes, as in TF Serving's ``json_tensor.cc``: integers
must be JSON integers in the dtype's range (300 is no uint8, 1e30 no int64), floats finite numbers
in range, booleans ``true``/``false``, strings JSON strings or ``{"b64": ...}``, and nested lists
rectangular. String outputs whose name ends in ``_bytes`` come back as ``{"b64": ...}``, as in TF
Serving, so ``png_bytes`` arrives as base64 PNG files.

Every request gets a JSON answer, refusals included: ``{"error": message}`` with 400 (bad
request), 404 (unknown model, version or path), 405 (wrong method, with ``Allow``), 408 (request
not received in time), 411 (no Content-Length), 413 (body over the cap), 431 (headers too large)
or 503 (overloaded or not ready, with ``Retry-After``). http.server's own refusals go through the
same ``send_error``. A refusal closes the connection, so whatever the client sent past the point
of refusal is never read as a request.

Bounded: ``threads`` workers serve the connections, at most ``max_connections`` are open (the
rest wait for a worker); one more is answered 503 with ``Retry-After`` by a small refuser and
closed. A client gets ``timeout`` seconds for a request's headers in all (not per read: a client
trickling a byte at a time is cut off as one that sends nothing), and again for its body, which is
read only once its announced length is known to be under the cap. A keep-alive connection is
closed after its answer while other connections wait for a worker.
"""
import base64
import io
import json
import logging
import math
import queue
import re
import reprlib
import socket
import sys
import threading
import time
import urllib.parse
from concurrent import futures
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2, predict_pb2

from wgan_tf.serving import page
from wgan_tf.serving.servable import DEFAULT_SIGNATURE, RequestError

log = logging.getLogger(__name__)
_PATH = re.compile(r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[0-9]{1,19})"
                   r"|/labels/(?P<label>[^/:]+))?(?P<resource>/metadata|:predict)?")
READY_PATH, LIVE_PATH = "/v2/health/ready", "/v2/health/live"
_INT64_MAX = 2 ** 63 - 1
RETRY_AFTER_SECONDS = 1
# TF Serving's ToHTTPStatusCode (model_servers/http_server.cc); any other code is a 500.
_HTTP_STATUS = {
    grpc.StatusCode.CANCELLED: 499, grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504, grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409, grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501, grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
# The default body cap: never below this, whatever the model; and the room one string input value
# gets (strings have no size in a signature: a small PNG in base64).
MIN_BODY_BYTES = 1 << 20
STRING_VALUE_BYTES = 64 << 10
_proto_json = partial(json_format.MessageToDict, preserving_proto_field_name=True,
                      always_print_fields_with_no_presence=True)


def default_max_body_bytes(servable):
    """Room for the largest predict request ``max_batch`` allows, over any one signature.

    Each value of every input gets generous room for its JSON text: all the digits its dtype can
    have, or a float written at full precision, plus brackets, separators and some indentation
    (40 bytes a float, 28 an int64, 11 a uint8 pixel), so a client meets ``--max-batch`` before
    the cap. An input with a dimension of unknown size besides the batch cannot be sized: it gets
    the floor, ``MIN_BODY_BYTES``, like any smaller request.
    """
    largest = 0
    for signature in servable.signatures.values():
        sizes = [servable.max_batch * math.prod(spec.shape[1:]) * _json_value_bytes(spec.dtype)
                 for spec in signature.inputs.values()
                 if spec.shape.rank and spec.shape[1:].is_fully_defined()]
        largest = max(largest, sum(sizes))
    return max(MIN_BODY_BYTES, largest)


def _json_value_bytes(dtype):
    if dtype == tf.string:
        return STRING_VALUE_BYTES
    if dtype.is_integer:
        return max(len(str(dtype.min)), len(str(dtype.max))) + 8
    return 40


class RestServer:
    """An HTTP server on ``port`` (0 picks a free one, then in ``.port``) over ``models`` (a
    ``registry.ModelRegistry``).

    ``max_body_bytes`` caps a predict request's body (None: ``default_max_body_bytes`` of the
    model version asked); ``timeout`` is the seconds a client gets to send a request's headers,
    and again its body; ``threads`` and ``max_connections`` bound the workers and the open
    connections; ``metrics`` (``metrics.Metrics``) is served at ``metrics_path`` if given.
    """

    def __init__(self, models, port, host="", max_body_bytes=None, timeout=30.0, threads=16,
                 max_connections=64, metrics=None, metrics_path=None):
        handler = type("Handler", (_Handler,), {
            "models": models, "timeout": timeout, "max_body_bytes": max_body_bytes,
            "metrics": metrics, "metrics_path": metrics_path})
        self._httpd = _HTTPServer((host, port), handler, threads=threads,
                                  max_connections=max(max_connections, threads), metrics=metrics)
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, name="rest", daemon=True).start()

    def stop(self):
        """No new connections; open ones end after the answer under way (idle ones at once)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.end_connections()
        self._httpd.pool.shutdown(wait=False, cancel_futures=True)


class _HTTPServer(HTTPServer):
    request_queue_size = 64  # connections waiting for accept(); more are refused by the OS

    def __init__(self, address, handler, threads, max_connections, metrics):
        self.threads, self.max_connections, self.metrics = threads, max_connections, metrics
        self.pool = futures.ThreadPoolExecutor(threads, thread_name_prefix="rest")
        self._connections, self._connections_lock = set(), threading.Lock()
        # Connections over the limit wait here for the refuser's 503 (dropped when it is full).
        self._refused = queue.Queue(maxsize=64)
        threading.Thread(target=self._refuse, name="rest-refuser", daemon=True).start()
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        with self._connections_lock:
            admitted = len(self._connections) < self.max_connections
            if admitted:
                self._connections.add(request)
        if not admitted:
            if self.metrics is not None:
                self.metrics.rest_connections_refused.inc()
            try:
                self._refused.put_nowait(request)
            except queue.Full:
                super().shutdown_request(request)
            return
        self.pool.submit(self._serve, request, client_address)

    def _serve(self, request, client_address):
        """One connection on a worker (socketserver.ThreadingMixIn's process_request_thread)."""
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def waiting(self):
        """Connections admitted and waiting for a worker."""
        return len(self._connections) - self.threads

    def _refuse(self):
        payload = json.dumps({"error": f"the server has {self.max_connections} connections open "
                                       "(wgan-tf serve --rest-max-connections); retry later"})
        answer = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(payload)}\r\nRetry-After: {RETRY_AFTER_SECONDS}\r\n"
                  f"Connection: close\r\n\r\n{payload}").encode()
        while True:
            request = self._refused.get()
            try:
                request.settimeout(0.2)
                request.sendall(answer)
                request.shutdown(socket.SHUT_WR)
                # Read what the client sent, briefly: closing with unread bytes would reset the
                # connection, and the client could lose the answer.
                deadline = time.monotonic() + 0.2
                while time.monotonic() < deadline and request.recv(65536):
                    pass
            except OSError:
                pass
            finally:
                super().shutdown_request(request)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def end_connections(self):
        """Keep-alive connections would outlive ``shutdown``: end their reading side, so an idle
        one reads end-of-file now and a busy one still sends the answer it is writing."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RD)
            except OSError:  # already closed by its thread
                pass

    def handle_error(self, request, client_address):
        """A client gone mid-answer is routine; anything else is a bug, logged (not on stderr)."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("REST client %s went away: %r", client_address, error)
        else:
            log.exception("REST request from %s failed", client_address)


class _DeadlineReader(io.RawIOBase):
    """A connection's reading side that raises TimeoutError once ``deadline`` has passed, however
    the bytes trickle in (a socket timeout bounds each read, not their sum)."""

    def __init__(self, sock):
        self.sock, self.deadline = sock, None

    def readable(self):
        return True

    def readinto(self, buffer):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        self.sock.settimeout(left)
        return self.sock.recv_into(buffer)


class _Refusal(Exception):
    """A request refused with an HTTP ``status`` (and extra response ``headers``)."""

    def __init__(self, status, message, headers=()):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def _bad(message):
    return _Refusal(HTTPStatus.BAD_REQUEST, message)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries its Content-Length
    models = max_body_bytes = metrics = metrics_path = None  # set per server by RestServer

    def setup(self):
        super().setup()
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self):
        self._reader.deadline = time.monotonic() + self.timeout  # the request line and headers
        super().handle_one_request()

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        log.debug("%s %s", self.address_string(), format % args)

    def parse_request(self):
        """http.server's parsing, plus JSON answers where it would give none or the wrong one:
        a client that stalls in its headers (no answer), HTTP/0.9 (an answer without status
        line), and methods other than GET and POST (an HTML 501; here 404 or 405 by the path).
        """
        try:
            parsed = super().parse_request()
        except TimeoutError:
            self.send_error(HTTPStatus.REQUEST_TIMEOUT, "the request headers did not arrive "
                            f"within {self.timeout:g} s")
            return False
        if parsed and self.request_version == "HTTP/0.9":
            self.send_error(HTTPStatus.BAD_REQUEST, "HTTP/0.9 requests are not supported")
            return False
        if parsed and self.command not in ("GET", "POST"):
            self._answer()
            return False
        return parsed

    def handle_expect_100(self):
        """http.server would say 100 Continue before the path, model and size are checked: the
        client would then upload a body that is refused. ``_read_body`` says it once they pass."""
        return True

    def do_GET(self):
        self._answer()

    do_POST = do_GET

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (bad request line, headers too large) in JSON, as ours."""
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"  # else http.server would send no status line
        self.log_error("code %d, message %s", code, message)
        detail = ": ".join(text for text in (message, explain) if text)
        self._send_json(code, {"error": detail or HTTPStatus(code).phrase})

    def _answer(self):
        headers = ()
        try:
            status, body = HTTPStatus.OK, self._route()
        except _Refusal as e:
            status, body, headers = e.status, {"error": e.message}, e.headers
        except RequestError as e:
            status, body = _HTTP_STATUS.get(e.code, 500), {"error": e.message}
        except ConnectionError:  # the client went away mid-request: handle_error logs it quietly
            raise
        except Exception as e:  # a bug: the client still gets JSON, the log gets the traceback
            log.exception("REST %s %s failed", self.command, self.path)
            status, body = 500, {"error": f"internal error: {type(e).__name__}: {e}"}
        if isinstance(body, _Raw):
            self._send(status, body.content_type, body.payload, headers)
        else:
            self._send_json(status, body, headers)

    def _send_json(self, status, body, headers=()):
        self._send(status, "application/json", json.dumps(body).encode(), headers)

    def _send(self, status, content_type, payload, headers=()):
        if status >= 400:
            self.close_connection = True
        elif self.server.waiting() > 0:  # others wait for a worker: let one have this one
            self.close_connection = True
        if status == HTTPStatus.SERVICE_UNAVAILABLE:
            headers = [*headers, ("Retry-After", str(RETRY_AFTER_SECONDS))]
        self.connection.settimeout(self.timeout)  # the reader left a shorter one
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers:
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _route(self):
        path = urllib.parse.urlsplit(self.path).path
        if path in (READY_PATH, LIVE_PATH) or (self.metrics_path and path == self.metrics_path):
            self._only(path, "GET")
            return self._health(path)
        if path in page.PATHS:
            self._only(path, "GET")
            return _Raw(*page.answer(path, self.models))
        png = page.png_path(path)
        match = _PATH.fullmatch(path if png is None else png)
        if not match or (png is not None and match["resource"] != ":predict"):
            raise _Refusal(HTTPStatus.NOT_FOUND, f"no such endpoint: {reprlib.repr(path)}; this "
                           "server answers /v1/models/NAME[/versions/N|/labels/L]"
                           f"[/metadata|:predict], {page.PNG_PREFIX}/v1/models/NAME[...]:predict, "
                           f"{READY_PATH}, {LIVE_PATH} and the page at /")
        method = "POST" if match["resource"] == ":predict" else "GET"
        self._only(path, method)
        spec = model_pb2.ModelSpec(name=urllib.parse.unquote(match["name"]))
        if match["version"]:
            version = int(match["version"])
            if version > _INT64_MAX:
                raise RequestError(grpc.StatusCode.NOT_FOUND,
                                   f"Servable not found for request: Specific({spec.name}, "
                                   f"{version})")
            spec.version.value = version
        elif match["label"]:
            spec.version_label = urllib.parse.unquote(match["label"])
        if method == "POST":
            return self._counted_predict(spec, png=png is not None)
        if "Transfer-Encoding" in self.headers or self.headers.get("Content-Length", "0") != "0":
            self.close_connection = True  # a GET's body is not read, so it ends the connection
        if match["resource"]:
            return _metadata_json(self.models.servable(spec))
        return _proto_json(self.models.status(spec))

    def _only(self, path, method):
        if self.command != method:
            raise _Refusal(HTTPStatus.METHOD_NOT_ALLOWED,
                           f"{self.command} is not allowed on {path}: use {method}",
                           [("Allow", method)])

    def _health(self, path):
        if path == LIVE_PATH:
            return {"live": True}
        if path == READY_PATH:
            models = self.models.readiness()
            if not (models and all(models.values())):
                raise _Refusal(HTTPStatus.SERVICE_UNAVAILABLE, "not ready: models loading or "
                               f"not loaded: {sorted(k for k, v in models.items() if not v)}")
            return {"ready": True, "models": models}
        from wgan_tf.serving.metrics import CONTENT_TYPE

        return _Raw(CONTENT_TYPE, self.metrics.text())

    def _counted_predict(self, spec, png=False):
        """``_predict``, counted in the metrics as TF Serving's HTTP server counts it."""
        started, code = time.monotonic(), grpc.StatusCode.OK
        name = spec.name
        if self.metrics is not None:
            self.metrics.in_flight.labels("REST").inc()
        try:
            return self._predict(spec, png)
        except RequestError as e:
            code = e.code
            raise
        except _Refusal:
            code = grpc.StatusCode.INVALID_ARGUMENT
            raise
        finally:
            if self.metrics is not None:
                self.metrics.in_flight.labels("REST").dec()
                if code == grpc.StatusCode.OK:
                    self.metrics.request_latency.labels(name, "predict", "REST").observe(
                        (time.monotonic() - started) * 1e6)
                self.metrics.request_count.labels(name, code.name).inc()

    def _predict(self, spec, png=False):
        """A predict answered in JSON, or with ``png`` as one PNG grid of its images (page.py)."""
        columns = page.grid_columns(urllib.parse.urlsplit(self.path).query) if png else None
        servable = self.models.servable(spec)
        document = _parse_json(self._read_body(self.max_body_bytes
                                               or default_max_body_bytes(servable)))
        name = document.get("signature_name", "")
        if not isinstance(name, str):
            raise _bad(f"'signature_name' must be a string, got {reprlib.repr(name)}")
        name = name or DEFAULT_SIGNATURE
        signature = servable.signature(name)
        if ("instances" in document) == ("inputs" in document):
            raise _bad("the request must have exactly one of 'instances' (row format) and "
                       "'inputs' (columnar format)")
        rows = "instances" in document
        values = (_from_rows(document["instances"], signature) if rows
                  else _from_columns(document["inputs"], signature))
        spec.signature_name = name
        request = predict_pb2.PredictRequest(model_spec=spec)
        for key, value in values.items():
            request.inputs[key].CopyFrom(
                tf.make_tensor_proto(_to_array(value, signature.inputs[key], key)))
        if png:
            request.output_filter.append(page.IMAGES_OUTPUT)
            return _Raw("image/png", page.grid_png(servable.predict(request).outputs, columns))
        return _predict_json(servable.predict(request).outputs, rows)

    def _read_body(self, limit):
        """The request body, read only when its announced length is at most ``limit``, and
        within ``timeout`` seconds in all, so that a client trickling bytes cannot hold a thread.
        """
        if "Transfer-Encoding" in self.headers:
            raise _Refusal(HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not supported: "
                           "send the body with a Content-Length")
        lengths = {value.strip() for value in self.headers.get_all("Content-Length", [])}
        if not lengths:
            raise _Refusal(HTTPStatus.LENGTH_REQUIRED, "a POST must give its body's size in "
                           "Content-Length")
        text = lengths.pop()
        if lengths or not re.fullmatch("[0-9]+", text):
            raise _bad(f"Content-Length must be one number of bytes, got {reprlib.repr(text)}")
        digits = text.lstrip("0") or "0"
        if len(digits) > len(str(limit)) or int(digits) > limit:
            raise _Refusal(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           f"a body of {reprlib.repr(digits)} bytes is over this server's "
                           f"limit of {limit} (wgan-tf serve --rest-max-body-bytes)")
        length, body = int(digits), bytearray()
        if self.headers.get("Expect", "").lower() == "100-continue":
            self.send_response_only(HTTPStatus.CONTINUE)
            self.end_headers()
        self._reader.deadline = time.monotonic() + self.timeout
        try:
            while len(body) < length:
                chunk = self.rfile.read1(length - len(body))
                if not chunk:
                    raise _bad(f"the body ended after {len(body)} of the {length} bytes "
                               "announced")
                body += chunk
        except TimeoutError:
            raise _Refusal(HTTPStatus.REQUEST_TIMEOUT,
                           f"{len(body)} of the {length} bytes of the body arrived within "
                           f"{self.timeout:g} s") from None
        return bytes(body)


class _Raw:
    """An answer that is not JSON (the metrics' text)."""

    def __init__(self, content_type, payload):
        self.content_type, self.payload = content_type, payload


def _parse_json(body):
    """The request as a JSON object; NaN, Infinity and numbers beyond float range refused."""
    try:
        document = json.loads(body, parse_constant=_not_finite, parse_float=_finite_float)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise _bad(f"the body is not valid JSON: {e}") from None
    if not isinstance(document, dict):
        raise _bad(f"the body must be a JSON object, got {reprlib.repr(document)}")
    return document


def _not_finite(name):
    raise ValueError(f"{name} is not a finite number")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        _not_finite(reprlib.repr(text))
    return value


def _names_inputs(value):
    """Whether a JSON value is an object of inputs by name (rather than ``{"b64": ...}``)."""
    return isinstance(value, dict) and not _is_b64(value)


def _is_b64(value):
    return isinstance(value, dict) and list(value) == ["b64"] and isinstance(value["b64"], str)


def _from_rows(instances, signature):
    """Row format: a list of instances, each a value (for one input) or an object naming all."""
    names = sorted(signature.inputs)
    if not isinstance(instances, list) or not instances:
        raise _bad(f"'instances' must be a non-empty list, got {reprlib.repr(instances)}")
    if not any(_names_inputs(row) for row in instances):
        if len(names) == 1:
            return {names[0]: instances}
        raise _bad(f"each instance must be an object naming the inputs {names}")
    for i, row in enumerate(instances):
        if not _names_inputs(row) or sorted(row) != names:
            raise _bad(f"instance {i} must be an object with exactly the keys {names}, "
                       f"got {reprlib.repr(row)}")
    return {name: [row[name] for row in instances] for name in names}


def _from_columns(inputs, signature):
    """Columnar format: one value (for one input) or an object naming every input."""
    names = sorted(signature.inputs)
    if not _names_inputs(inputs):
        if len(names) == 1:
            return {names[0]: inputs}
        raise _bad(f"'inputs' must be an object naming the inputs {names}")
    if sorted(inputs) != names:
        raise _bad(f"'inputs' must name exactly the inputs {names}, got {sorted(inputs)}")
    return inputs


def _to_array(value, spec, name):
    """A JSON value as an array of the input's dtype; refuses values the dtype cannot hold
    (rather than letting numpy wrap 300 into a uint8 or round 1e30 into an int64)."""
    shape, leaves = _flatten(value, name)
    dtype = spec.dtype
    if dtype == tf.string:
        return np.array([_string(leaf, name) for leaf in leaves], dtype=object).reshape(shape)
    if dtype.is_bool:
        kinds, bounds, wanted = (bool,), None, "true or false"
    elif dtype.is_integer:
        kinds, bounds = (int,), (dtype.min, dtype.max)
        wanted = f"an integer in [{dtype.min}, {dtype.max}]"
    elif dtype.is_floating:
        kinds, bounds = (int, float), (float(dtype.min), float(dtype.max))
        wanted = f"a finite number in [{bounds[0]:g}, {bounds[1]:g}]"
    else:
        raise _bad(f"input {name!r} is {dtype.name}, which this server does not read from JSON")

    def fits(value):  # type(), not isinstance(): true is no integer, 1.0 no int64
        return type(value) in kinds and (bounds is None or bounds[0] <= value <= bounds[1])
    if not all(map(fits, leaves)):
        wrong = next(leaf for leaf in leaves if not fits(leaf))
        raise _bad(f"input {name!r} is {dtype.name}: each value must be {wanted}, "
                   f"got {reprlib.repr(wrong)}")
    return np.array(leaves, dtype.as_numpy_dtype).reshape(shape)


def _flatten(value, name):
    """Nested JSON lists as (shape, values in row-major order); the lists must be rectangular.

    The shape follows the first element at every level, as in TF Serving. It is a loop, not a
    recursion: no nesting can exhaust the stack (and the JSON parser refuses absurd depths).
    """
    shape, first = [], value
    while isinstance(first, list):
        shape.append(len(first))
        first = first[0] if first else None
    leaves = [value]
    for size in shape:
        nested = []
        for item in leaves:
            if not isinstance(item, list) or len(item) != size:
                raise _bad(f"input {name!r} must be a rectangular array of shape {shape}; "
                           f"found {reprlib.repr(item)} where a list of {size} belongs")
            nested.extend(item)
        leaves = nested
    deeper = next((leaf for leaf in leaves if isinstance(leaf, list)), None)
    if deeper is not None:
        raise _bad(f"input {name!r} must be a rectangular array of shape {shape}; found "
                   f"{reprlib.repr(deeper)} where a value belongs")
    return shape, leaves


def _string(value, name):
    """A string input's value: JSON text (as UTF-8) or ``{"b64": ...}`` (binary)."""
    try:
        if isinstance(value, str):
            return value.encode()
        if _is_b64(value):
            return base64.b64decode(value["b64"], validate=True)
    except ValueError as e:  # lone surrogates; bad base64 (binascii.Error)
        raise _bad(f"input {name!r}: {reprlib.repr(value)} is not a valid string: {e}") from None
    raise _bad(f"input {name!r} is a string: each value must be a JSON string or "
               f'{{"b64": ...}}, got {reprlib.repr(value)}')


def _predict_json(outputs, rows):
    """Outputs as TF Serving writes them: ``predictions`` (rows, one object per instance when
    there are several outputs) or ``outputs`` (columns); a single output goes unnamed."""
    values = {key: _to_json(key, tf.make_ndarray(proto)) for key, proto in outputs.items()}
    if not rows:
        return {"outputs": values if len(values) > 1 else next(iter(values.values()))}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    count = len(next(iter(values.values())))
    return {"predictions": [{k: v[i] for k, v in values.items()} for i in range(count)]}


def _to_json(name, array):
    """An output array as nested JSON lists. Strings are text, except for outputs named
    ``*_bytes`` and bytes that are not UTF-8: those are ``{"b64": ...}`` (JSON has no bytes)."""
    if array.dtype != object:
        return array.tolist()

    def text(value):
        if not name.endswith("_bytes"):
            try:
                return value.decode()
            except UnicodeDecodeError:
                pass
        return {"b64": base64.b64encode(value).decode()}
    return np.vectorize(text, otypes=[object])(array).tolist()


def _metadata_json(servable):
    """GetModelMetadataResponse as TF Serving's REST API writes it: the ``Any`` that holds the
    SignatureDefMap is written unpacked (``ToJsonString`` in ``http_rest_api_util.cc``)."""
    metadata = servable.metadata()
    signatures = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(signatures)
    document = {"signature_def": _proto_json(signatures)}
    if servable.class_names is not None:  # this server's addition, as in the gRPC metadata
        document["class_names"] = list(servable.class_names)
    return {"model_spec": _proto_json(metadata.model_spec), "metadata": document}
