"""TF Serving's REST API, the part a browser or curl needs, over the same servables as gRPC.

- ``GET /v1/models/NAME[/versions/N]``: model status (JSON of GetModelStatusResponse)
- ``POST /v1/models/NAME[/versions/N]:predict`` with ``{"signature_name": ..., "instances": [...]}``
  (row format, answered with ``predictions``) or ``{"inputs": ...}`` (columnar, answered with
  ``outputs``). String outputs whose name ends in ``_bytes`` come back as ``{"b64": ...}``, as in
  TF Serving, so ``png_bytes`` arrives as base64 PNG files.

Errors are ``{"error": message}`` with 400 for a bad request and 404 for an unknown model.
"""
import base64
import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import model_pb2, predict_pb2

from wgan_tf.serving.servable import DEFAULT_SIGNATURE, RequestError

_URL = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
                  r"(?P<verb>:predict)?$")
log = logging.getLogger(__name__)
_HTTP_STATUS = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.NOT_FOUND: 404}


class RestServer:
    """A threaded HTTP server on ``port`` (0 picks a free one, then in ``.port``)."""

    def __init__(self, models, port, host=""):
        handler = type("Handler", (_Handler,), {"models": models})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, name="rest", daemon=True).start()

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    models = None  # set per server by RestServer

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self):
        self._route(lambda spec, verb: None if verb else
                    json_format.MessageToDict(self.models.status(spec),
                                              preserving_proto_field_name=True,
                                              always_print_fields_with_no_presence=True))

    def do_POST(self):
        self._route(lambda spec, verb: self._predict(spec) if verb else None)

    def _route(self, answer):
        match = _URL.match(self.path)
        spec = model_pb2.ModelSpec(name=match["name"]) if match else None
        if match and match["version"]:
            spec.version.value = int(match["version"])
        try:
            body = answer(spec, match["verb"]) if match else None
            status = 200 if body is not None else 404
            body = body if body is not None else {"error": f"no such endpoint: {self.path}"}
        except RequestError as e:
            status, body = _HTTP_STATUS.get(e.code, 500), {"error": e.message}
        except (ValueError, TypeError, KeyError) as e:
            status, body = 400, {"error": f"bad JSON request: {e}"}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _predict(self, spec):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        spec.signature_name = body.get("signature_name", DEFAULT_SIGNATURE)
        servable = self.models.servable(spec)
        signature = servable.signature(spec.signature_name)
        rows = "instances" in body
        request = predict_pb2.PredictRequest(model_spec=spec)
        for key, value in _columns(body["instances"] if rows else body["inputs"],
                                   list(signature.inputs)).items():
            dtype = tf.dtypes.as_dtype(signature.inputs[key].dtype).as_numpy_dtype
            request.inputs[key].CopyFrom(tf.make_tensor_proto(np.asarray(value, dtype)))
        response = servable.predict(request)
        outputs = {key: _to_json(key, tf.make_ndarray(proto))
                   for key, proto in response.outputs.items()}
        if not rows:
            return {"outputs": outputs if len(outputs) > 1 else next(iter(outputs.values()))}
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values()))}
        count = len(next(iter(outputs.values())))
        return {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(count)]}


def _columns(data, input_names):
    """Row or columnar JSON inputs to ``{input name: nested list}``."""
    if isinstance(data, dict):
        return data
    if data and isinstance(data[0], dict):
        return {key: [row[key] for row in data] for key in input_names}
    if len(input_names) != 1:
        raise ValueError(f"name the inputs {input_names} in each instance")
    return {input_names[0]: data}


def _to_json(name, array):
    if array.dtype == object:
        if name.endswith("_bytes"):
            return [{"b64": base64.b64encode(v).decode()} for v in array.ravel()]
        return [v.decode() for v in array.ravel()]
    return array.tolist()
