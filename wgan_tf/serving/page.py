"""The web page on ``wgan-tf serve``'s REST port: a person looks at a served model in a browser.

Part of the server, so wherever ``wgan-tf serve`` runs (locally, the ``serving-python`` image) it
is there with no extra process (TF Serving's own binary has no page); no build step and no request
to another host (it works in a cluster without internet). The page
itself is ``page_files/index.html``, ``page.js`` and ``page.css`` beside this module, sent as they
are.

What it asks beyond TF Serving's REST API (which it uses for the models' versions and signatures),
added beside that API rather than changing it:

- ``GET /``: the page; ``GET /page/page.js`` and ``GET /page/page.css``: its script and style.
- ``GET /page/models``: ``{"models": ["flowers", "wgan"]}``, the names of the served models
  (TF Serving's REST API has no listing).
- ``POST /png/v1/models/NAME[/versions/N | /labels/LABEL]:predict[?columns=C]``: TF Serving's
  predict request, body unchanged, answered with one ``image/png``: the signature's ``images``
  output as a grid, C images a row (default: the square root of their number, rounded up), 2
  black pixels between and around them, as ``wgan-tf generate --out FILE.png`` lays them out
  (``pictures.grid``). A grid of 64 images is one request and one PNG instead of 786,432 pixel
  values in JSON. It is a predict: the same body cap, ``--max-batch``, request batching and
  metrics (counted as a REST ``predict``), and the same ``{"error": ...}`` refusals.
"""
import functools
import json
import urllib.parse
from importlib import resources

import grpc
import numpy as np
import tensorflow as tf

from wgan_tf import pictures
from wgan_tf.serving.servable import RequestError

MODELS_PATH = "/page/models"
PNG_PREFIX = "/png"  # then TF Serving's own predict path
IMAGES_OUTPUT = "images"
FILES = "page_files"  # beside this module (a folder named page would read as a package of it)
# URL path -> (file beside this module, Content-Type).
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/page/page.js": ("page.js", "text/javascript; charset=utf-8"),
    "/page/page.css": ("page.css", "text/css; charset=utf-8"),
}
PATHS = frozenset([*STATIC, MODELS_PATH])


def answer(path, registry):
    """(Content-Type, bytes) of a ``GET`` of one of ``PATHS``."""
    if path == MODELS_PATH:
        return "application/json", json.dumps({"models": registry.names()}).encode()
    name, content_type = STATIC[path]
    return content_type, _file(name)


@functools.cache
def _file(name):
    """A page file's bytes, read once (package data: ``setup.py`` ships ``FILES``)."""
    return resources.files(__package__).joinpath(FILES, name).read_bytes()


def png_path(path):
    """TF Serving's path inside a ``/png/...`` path, or None for any other path."""
    if path.startswith(PNG_PREFIX + "/"):
        return path[len(PNG_PREFIX):]
    return None


def grid_columns(query):
    """The ``columns`` a PNG request's query string asks for (None: the default); anything else
    in the query is refused, so that a misspelt parameter is not silently ignored."""
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(params) - {"columns"})
    if unknown:
        raise _invalid(f"unknown query parameter {unknown[0]!r}: this endpoint takes only "
                       "columns (images a row)")
    if "columns" not in params:
        return None
    values = params["columns"]
    if len(values) != 1 or not values[0].isdigit() or int(values[0]) < 1:
        raise _invalid(f"columns must be one whole number of at least 1, got {values!r}")
    return int(values[0])


def grid_png(outputs, columns):
    """The PNG of a PredictResponse's ``images`` output laid out ``columns`` a row."""
    images = tf.make_ndarray(outputs[IMAGES_OUTPUT])
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise _invalid(f"the {IMAGES_OUTPUT!r} output is {images.dtype} {list(images.shape)}, "
                       "not uint8 [N, H, W, 1, 3 or 4] images")
    if not len(images):
        raise _invalid("no images to lay out: the request asked for 0")
    if columns is not None and columns > len(images):
        raise _invalid(f"columns ({columns}) must be at most the number of images "
                       f"({len(images)})")
    return tf.io.encode_png(pictures.grid(images, columns)).numpy()


def _invalid(message):
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)
