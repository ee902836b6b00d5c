"""A conditional generator served by the real ``wgan-tf serve`` in a fresh process, asked over gRPC
(the client, raw stubs), REST and ``wgan-tf generate``: labels by index and name, the class names
in the metadata, one clear refusal of an unknown class everywhere, and the same (seed, label)
giving the same image in any batch."""
import base64
import io
import json
import signal
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, prediction_service_pb2_grpc

from helpers import FLOWER_CLASSES, make_conditional_run, start_wgan_tf, wgan_tf
from test_serving import free_port, grid_cells
from wgan_tf.errors import ConfigError
from wgan_tf.export import export_generator
from wgan_tf.serving import Client, ServerError

SIZE = 8


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``wgan-tf serve`` of a tiny conditional export: (gRPC address, REST base URL)."""
    root = tmp_path_factory.mktemp("conditional")
    make_conditional_run(root / "run", image_size=SIZE)
    export_generator(root / "run", root / "flowers")
    port, rest_port = free_port(), free_port()
    server = start_wgan_tf("serve", "--model-base-path", root / "flowers", "--port", port,
                           "--rest-port", rest_port)
    address = f"localhost:{port}"
    try:
        with Client(address) as client:
            client.wait_until_ready(180)
        yield address, f"http://localhost:{rest_port}/v1/models/wgan"
    finally:
        server.send_signal(signal.SIGTERM)
        _, log = server.communicate(timeout=60)
    assert server.returncode == 0, log


@pytest.fixture()
def client(served):
    with Client(served[0]) as c:
        yield c


def test_labels_by_index_and_name_any_batch(served, client):
    assert client.class_names() == list(FLOWER_CLASSES)
    tulips = client.generate(6, seed=10, labels="tulip")
    assert tulips.shape == (6, SIZE, SIZE, 3) and tulips.dtype == np.uint8
    np.testing.assert_array_equal(client.generate(6, seed=10, labels=4), tulips)
    mixed = client.generate(6, seed=10, labels=[0, 4, 1, 4, 2, 3])
    np.testing.assert_array_equal(mixed[[1, 3]], tulips[[1, 3]])
    assert not np.array_equal(mixed[0], tulips[0])  # the class changes the image
    np.testing.assert_array_equal(client.generate(1, seed=13, labels="tulip")[0], tulips[3])
    with Client(served[0], max_batch=4) as chunked:  # two requests
        np.testing.assert_array_equal(chunked.generate(6, seed=10, labels="tulip"), tulips)
    truncated = client.generate(6, seed=10, labels="tulip", truncation=0.5)
    assert not np.array_equal(truncated, tulips)
    np.testing.assert_array_equal(client.generate(1, seed=12, labels=4, truncation=0.5)[0],
                                  truncated[2])
    strip = client.interpolate(10, 15, steps=4, label="tulip")
    np.testing.assert_array_equal(strip[[0, -1]], tulips[[0, 5]])


def test_metadata_names_the_classes(served):
    with grpc.insecure_channel(served[0]) as channel:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = "wgan"
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(
            request, timeout=30)
    names = tensor_pb2.TensorProto()
    assert response.metadata["class_names"].Unpack(names)
    assert tf.make_ndarray(names).tolist() == [n.encode() for n in FLOWER_CLASSES]
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert "classes" in signatures.signature_def
    rest = json.loads(urllib.request.urlopen(f"{served[1]}/metadata", timeout=30).read())
    assert rest["metadata"]["class_names"] == list(FLOWER_CLASSES)
    assert "classes" in rest["metadata"]["signature_def"]["signature_def"]


@pytest.mark.parametrize("label", [5, -1])
def test_unknown_class_is_refused_in_one_line(served, client, label):
    with pytest.raises(ServerError) as raised:
        client.generate(2, labels=[0, label])
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    message = str(raised.value)
    assert "\n" not in message and "labels must be class indices in [0, 5)" in message
    assert f"daisy, dandelion, rose, sunflower, tulip), got [{label}]" in message, message
    assert "assertion" not in message  # refused before TensorFlow, not by the graph's check
    with pytest.raises(ConfigError) as raised:
        client.generate(2, labels="orchid")
    assert str(raised.value) == ("unknown class 'orchid': model 'wgan' has classes daisy, "
                                 "dandelion, rose, sunflower, tulip")
    body = json.dumps({"signature_name": "from_seeds",
                       "instances": [{"seeds": 1, "labels": label}]}).encode()
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(f"{served[1]}:predict", body, timeout=30)
    assert raised.value.code == 400
    assert "labels must be class indices in [0, 5)" in json.loads(raised.value.read())["error"]
    assert client.generate(1, labels=0).shape == (1, SIZE, SIZE, 3)  # still serving


def test_rest_labels_and_class_names(served, client):
    url = f"{served[1]}:predict"

    def post(body):
        return json.loads(urllib.request.urlopen(url, json.dumps(body).encode(), timeout=30).read())

    rows = post({"signature_name": "from_seeds",
                 "instances": [{"seeds": 3, "labels": 4}, {"seeds": 4, "labels": 0}]})
    expected = client.generate(2, seed=3, labels=[4, 0])
    np.testing.assert_array_equal(rows["predictions"][1]["images"], expected[1])
    png = base64.b64decode(rows["predictions"][0]["png_bytes"]["b64"])
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), expected[0])
    columns = post({"signature_name": "interpolate", "inputs": {
        "seed_a": [3, 3], "seed_b": [9, 9], "t": [0.0, 1.0], "labels": [4, 4]}})
    np.testing.assert_array_equal(columns["outputs"]["images"],
                                  client.interpolate(3, 9, steps=2, label=4))
    truncated = post({"signature_name": "from_seeds_truncated",
                      "inputs": {"seeds": [3], "truncation": [0.5], "labels": [4]}})
    np.testing.assert_array_equal(truncated["outputs"]["images"],
                                  client.generate(1, seed=3, labels=4, truncation=0.5))
    classes = post({"signature_name": "classes", "instances": [0]})
    assert classes == {"predictions": [list(FLOWER_CLASSES)]}


def test_generate_command(served, client, tmp_path):
    address = served[0]
    wgan_tf("generate", "--server", address, "--label", "tulip", "--num", "4", "--seed", "10",
            "--out", tmp_path / "tulips.png")
    np.testing.assert_array_equal(grid_cells(tmp_path / "tulips.png", 2, SIZE),
                                  client.generate(4, seed=10, labels="tulip"))
    wgan_tf("generate", "--server", address, "--label", "all", "--num", "3", "--seed", "10",
            "--out", tmp_path / "classes.png")
    rows = grid_cells(tmp_path / "classes.png", 3, SIZE)
    assert len(rows) == 5 * 3  # a row per class, the same seeds in every row
    for k in range(5):
        np.testing.assert_array_equal(rows[3 * k:3 * k + 3], client.generate(3, seed=10, labels=k))
    wgan_tf("generate", "--server", address, "--label", "1", "--interpolate", "10", "13",
            "--steps", "5", "--out", tmp_path / "strip.png")
    strip = grid_cells(tmp_path / "strip.png", 5, SIZE)
    np.testing.assert_array_equal(strip[[0, 4]], client.generate(4, seed=10, labels=1)[[0, 3]])
    wgan_tf("generate", "--server", address, "--label", "rose", "--num", "2", "--seed", "5",
            "--truncation", "0.7", "--out", f"{tmp_path / 'each'}/")
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == \
        ["seed_5_rose.png", "seed_6_rose.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "each" / "seed_6_rose.png")),
                                  client.generate(1, seed=6, labels=2, truncation=0.7)[0])


@pytest.mark.parametrize("flags, message", [
    (["--label", "orchid"], "--label: unknown class 'orchid'; model 'wgan' at {address} has "
     "classes daisy, dandelion, rose, sunflower, tulip (by name, or index 0 to 4; or all)"),
    (["--label", "7"], "--label: unknown class '7'"),
    ([], "model 'wgan' at {address} makes an image of a class: give --label (one of daisy, "
     "dandelion, rose, sunflower, tulip, or all)"),
], ids=["unknown name", "unknown index", "no label"])
def test_generate_command_refuses_in_one_line(served, tmp_path, flags, message):
    address = served[0]
    result = wgan_tf("generate", "--server", address, *flags, "--out", tmp_path / "out.png",
                     check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("wgan-tf generate: error: " + message.format(address=address))
    assert not (tmp_path / "out.png").exists()
