"""TF Serving's REST API over the same servables as gRPC, on the standard library's http.server.

- ``GET /v1/models/NAME[/versions/N]``: model status (JSON of GetModelStatusResponse)
- ``GET /v1/models/NAME[/versions/N]/metadata``: the signatures, written as TF Serving writes them
  (``{"model_spec": ..., "metadata": {"signature_def": {"signature_def": {...}}}}``), and a
  conditional model's ``"class_names": [...]`` beside ``signature_def``
- ``POST /v1/models/NAME[/versions/N]:predict`` with ``{"signature_name": ..., "instances": [...]}``
  (row format, answered with ``predictions``) or ``{"inputs": ...}`` (columnar, answered with
  ``outputs``).

JSON becomes tensors by the signature's dtypes, as in TF Serving's ``json_tensor.cc``: integers
must be JSON integers in the dtype's range (300 is no uint8, 1e30 no int64), floats finite numbers
in range, booleans ``true``/``false``, strings JSON strings or ``{"b64": ...}``, and nested lists
rectangular. String outputs whose name ends in ``_bytes`` come back as ``{"b64": ...}``, as in TF
Serving, so ``png_bytes`` arrives as base64 PNG files.

Every request gets a JSON answer, refusals included: ``{"error": message}`` with 400 (bad
request), 404 (unknown model, version or path), 405 (wrong method, with ``Allow``), 408 (request
not received in time), 411 (no Content-Length), 413 (body over the cap) or 431 (headers too
large). http.server's own refusals go through the same ``send_error``. A body is read only once
its announced length is known to be under the cap, within ``timeout`` seconds, so neither a huge
Content-Length nor a stalled client costs memory or holds a thread. A refusal closes the
connection, so whatever the client sent past the point of refusal is never read as a request.
"""
import base64
import json
import logging
import math
import re
import reprlib
import socket
import sys
import threading
import time
import urllib.parse
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2, predict_pb2

from wgan_tf.serving.servable import DEFAULT_SIGNATURE, RequestError

log = logging.getLogger(__name__)
_PATH = re.compile(r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[0-9]{1,19}))?"
                   r"(?P<resource>/metadata|:predict)?")
_INT64_MAX = 2 ** 63 - 1
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
    """A threaded HTTP server on ``port`` (0 picks a free one, then in ``.port``).

    ``max_body_bytes`` caps a predict request's body (None: ``default_max_body_bytes`` of the
    model version asked); ``timeout`` is the seconds a client may stay silent while it sends a
    request's headers (per read, as http.server times them), and the seconds its whole body may
    take.
    """

    def __init__(self, models, port, host="", max_body_bytes=None, timeout=30.0):
        handler = type("Handler", (_Handler,), {"models": models, "timeout": timeout,
                                                "max_body_bytes": max_body_bytes})
        self._httpd = _HTTPServer((host, port), handler)
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, name="rest", daemon=True).start()

    def stop(self):
        """No new connections; open ones end after the answer under way (idle ones at once)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.end_connections()


class _HTTPServer(ThreadingHTTPServer):
    request_queue_size = 64  # connections waiting for accept(); more are refused by the OS

    def __init__(self, *args, **kwargs):
        self._connections, self._connections_lock = set(), threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

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


class _Refusal(Exception):
    """A request refused with an HTTP ``status`` (and extra response ``headers``)."""

    def __init__(self, status, message, headers=()):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def _bad(message):
    return _Refusal(HTTPStatus.BAD_REQUEST, message)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries its Content-Length
    models = max_body_bytes = None  # set per server by RestServer, with ``timeout``

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
        self._send_json(status, body, headers)

    def _send_json(self, status, body, headers=()):
        payload = json.dumps(body).encode()
        if status >= 400:
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
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
        match = _PATH.fullmatch(path)
        if not match:
            raise _Refusal(HTTPStatus.NOT_FOUND, f"no such endpoint: {reprlib.repr(path)}; this "
                           "server answers /v1/models/NAME[/versions/N][/metadata|:predict]")
        method = "POST" if match["resource"] == ":predict" else "GET"
        if self.command != method:
            raise _Refusal(HTTPStatus.METHOD_NOT_ALLOWED,
                           f"{self.command} is not allowed on {path}: use {method}",
                           [("Allow", method)])
        spec = model_pb2.ModelSpec(name=urllib.parse.unquote(match["name"]))
        if match["version"]:
            version = int(match["version"])
            if version > _INT64_MAX:
                raise RequestError(grpc.StatusCode.NOT_FOUND,
                                   f"Servable not found for request: Specific({spec.name}, "
                                   f"{version})")
            spec.version.value = version
        if method == "POST":
            return self._predict(spec)
        if "Transfer-Encoding" in self.headers or self.headers.get("Content-Length", "0") != "0":
            self.close_connection = True  # a GET's body is not read, so it ends the connection
        if match["resource"]:
            return _metadata_json(self.models.servable(spec))
        return _proto_json(self.models.status(spec))

    def _predict(self, spec):
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
        deadline = time.monotonic() + self.timeout
        try:
            while len(body) < length:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self.connection.settimeout(left)
                chunk = self.rfile.read1(length - len(body))
                if not chunk:
                    raise _bad(f"the body ended after {len(body)} of the {length} bytes "
                               "announced")
                body += chunk
        except TimeoutError:
            raise _Refusal(HTTPStatus.REQUEST_TIMEOUT,
                           f"{len(body)} of the {length} bytes of the body arrived within "
                           f"{self.timeout:g} s") from None
        finally:
            self.connection.settimeout(self.timeout)
        return bytes(body)


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
