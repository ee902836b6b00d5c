"""The Python server over gRPC on localhost, through the client and the raw TF Serving stubs."""
import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image
from tensorflow_serving.apis import (get_model_metadata_pb2, predict_pb2,
                                     prediction_service_pb2_grpc)

from helpers import wgan_tf
from wgan_tf.errors import ConfigError
from wgan_tf.export import export_generator
from wgan_tf.models import dcgan_generator
from wgan_tf.serving import Client, ServerError, config_files
from wgan_tf.serving.servable import RequestError
from wgan_tf.serving.server import ModelServer

LATENT = 8
SIGNATURES = {"serving_default", "from_seeds", "from_seeds_truncated", "interpolate"}


def make_run(path):
    """A run directory with a fresh (randomly initialised) small 16x16 generator."""
    path.mkdir(parents=True)
    dcgan_generator(image_size=16, channels=3, latent_dim=LATENT, filters=8).save(
        path / "generator.keras")
    (path / "config.json").write_text(json.dumps(
        {"latent_dim": LATENT, "image_size": 16, "channels": 3, "arch": "dcgan",
         "dataset": "digits"}))
    return path


def free_port():
    """A port that was free a moment ago, from the OS."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    export_generator(make_run(root / "run"), root / "wgan")
    return root / "wgan"


@pytest.fixture(scope="module")
def server(base):
    with ModelServer(base, port=0, rest_port=0) as s:
        yield s


@pytest.fixture()
def client(server):
    with Client(f"localhost:{server.port}", timeout=30) as c:
        yield c


def test_round_trip(client):
    images = client.generate(4, seed=0)
    assert images.shape == (4, 16, 16, 3) and images.dtype == np.uint8
    pngs = client.png_bytes(4, seed=0)
    np.testing.assert_array_equal(np.stack([np.asarray(Image.open(io.BytesIO(p))) for p in pngs]),
                                  images)
    from_latent = client.from_latent(np.random.default_rng(0).normal(size=(3, LATENT)))
    assert from_latent.shape == (3, 16, 16, 3) and from_latent.dtype == np.uint8
    assert client.status() == {1: "AVAILABLE"}


def test_same_seed_same_image_across_batches(server, client):
    batch = client.generate(8, seed=0)
    np.testing.assert_array_equal(client.generate(1, seed=5)[0], batch[5])
    with Client(f"localhost:{server.port}", max_batch=3) as chunked:  # 3 requests of <= 3
        np.testing.assert_array_equal(chunked.generate(8, seed=0), batch)


def test_truncation_and_interpolation(client):
    images = client.generate(6, seed=20)
    np.testing.assert_array_equal(client.generate(6, seed=20, truncation=6.0), images)
    truncated = client.generate(6, seed=20, truncation=0.5)
    assert truncated.shape == images.shape and not np.array_equal(truncated, images)
    np.testing.assert_array_equal(client.generate(1, seed=23, truncation=0.5)[0], truncated[3])
    pngs = client.png_bytes(2, seed=20, truncation=0.5)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(pngs[1]))), truncated[1])
    strip = client.interpolate(20, 25, steps=5)
    assert strip.shape == (5, 16, 16, 3)
    np.testing.assert_array_equal(strip[0], images[0])
    np.testing.assert_array_equal(strip[-1], images[5])
    assert client.class_names() is None  # not a conditional model
    with pytest.raises(ConfigError, match="has no classes"):
        client.generate(2, labels="tulip")
    with pytest.raises(ConfigError, match="must be >= 0"):
        client.generate(2, truncation=-1.0)  # refused before it is sent
    seeds = np.arange(2, dtype=np.int64)
    for signature, inputs in [
            ("from_seeds_truncated", {"seeds": seeds, "truncation": np.float32([0.5, np.nan])}),
            ("interpolate", {"seed_a": seeds, "seed_b": seeds, "t": np.float32([0, np.inf])})]:
        with pytest.raises(ServerError) as raised:
            client.predict(signature, inputs)
        assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
        # Refused before TensorFlow: a batch merged with other requests would fail them all.
        assert "must be" in str(raised.value) and "assertion" not in str(raised.value)


def _predict(seeds=None, **spec):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = spec.pop("name", "wgan")
    request.model_spec.signature_name = spec.pop("signature", "from_seeds")
    if "version" in spec:
        request.model_spec.version.value = spec.pop("version")
    request.inputs[spec.pop("input", "seeds")].CopyFrom(
        tf.make_tensor_proto(np.arange(3, dtype=np.int64) if seeds is None else seeds))
    request.output_filter.extend(spec.pop("output_filter", []))
    return request


BAD_REQUESTS = {
    "too many samples": (_predict(np.arange(1025, dtype=np.int64)), "INVALID_ARGUMENT"),
    "wrong dtype": (_predict(np.arange(3, dtype=np.int32)), "INVALID_ARGUMENT"),
    "float seeds": (_predict(np.zeros(3, np.float32)), "INVALID_ARGUMENT"),
    "wrong rank": (_predict(np.zeros((3, 2), np.int64)), "INVALID_ARGUMENT"),
    "wrong latent size": (_predict(np.zeros((2, LATENT + 1), np.float32), signature="",
                                   input="latent"), "INVALID_ARGUMENT"),
    "wrong input name": (_predict(input="z"), "INVALID_ARGUMENT"),
    "unknown output": (_predict(output_filter=["nope"]), "INVALID_ARGUMENT"),
    "unknown signature": (_predict(signature="nope"), "INVALID_ARGUMENT"),
    "unknown model": (_predict(name="bedrooms"), "NOT_FOUND"),
    "unknown version": (_predict(version=7), "NOT_FOUND"),
}


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_bad_request_gets_its_status_and_server_keeps_serving(server, client, name):
    request, code = BAD_REQUESTS[name]
    with grpc.insecure_channel(f"localhost:{server.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Predict(request, timeout=30)
        assert raised.value.code().name == code, raised.value.details()
        assert stub.Predict(_predict(), timeout=30).outputs["images"].tensor_shape.dim[0].size == 3
    assert client.generate(1).shape == (1, 16, 16, 3)


def test_client_error_is_one_line(client):
    with pytest.raises(ServerError) as raised:
        client.predict("from_seeds", {"seeds": np.arange(3, dtype=np.int32)})
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "\n" not in str(raised.value) and "DT_INT64" in str(raised.value)


def grpc_metadata(port):
    """The ModelSpec and the SignatureDefMap that GetModelMetadata answers."""
    with grpc.insecure_channel(f"localhost:{port}") as channel:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = "wgan"
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(
            request, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    return response.model_spec, signatures


def test_metadata_and_health(server):
    spec, signatures = grpc_metadata(server.port)
    assert set(signatures.signature_def) == SIGNATURES
    assert spec.version.value == 1
    with grpc.insecure_channel(f"localhost:{server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "tensorflow.serving.PredictionService"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=30)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_servable_state_is_read_only_to_requests(server):
    """Requests see plain read-only values; a shared proto map would grow on a lookup."""
    servable = server.manager.servable()
    with pytest.raises(TypeError):
        servable.signatures["from_seeds"].inputs["a"] = None
    with pytest.raises(RequestError):
        servable.signature("a")
    copy = servable.signature_def_map()
    copy.signature_def["from_seeds"].inputs["a"].name = "grown"  # changes this copy only
    assert set(servable.signature_def_map().signature_def["from_seeds"].inputs) == {"seeds"}
    assert set(servable.signatures) == SIGNATURES


def test_eight_concurrent_clients(server, client):
    expected = client.generate(32, seed=100)
    results, errors = {}, []

    def ask(k):
        try:
            with Client(f"localhost:{server.port}") as own:
                results[k] = [own.generate(4, seed=100 + 4 * k) for _ in range(3)]
        except Exception as e:  # surfaced below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(8):
        for images in results[k]:
            np.testing.assert_array_equal(images, expected[4 * k:4 * k + 4])


def test_rest_predict_and_status(server, client):
    url = f"http://localhost:{server.rest_port}/v1/models/wgan"
    status = json.loads(urllib.request.urlopen(url, timeout=30).read())
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    body = json.dumps({"signature_name": "from_seeds", "instances": [5, 6]}).encode()
    answer = json.loads(urllib.request.urlopen(f"{url}:predict", body, timeout=30).read())
    png = base64.b64decode(answer["predictions"][0]["png_bytes"]["b64"])
    expected = client.generate(2, seed=5)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), expected[0])
    np.testing.assert_array_equal(answer["predictions"][1]["images"], expected[1])
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(f"{url}:predict", b'{"instances": [[1, 2]]}', timeout=30)
    assert raised.value.code == 400 and "error" in json.loads(raised.value.read())


def test_new_version_is_picked_up_while_serving(tmp_path):
    base = tmp_path / "wgan"
    export_generator(make_run(tmp_path / "run1"), base)
    with ModelServer(base, port=0, poll_seconds=0.1) as server, \
            Client(f"localhost:{server.port}") as client:
        first = client.generate(2)
        export_generator(make_run(tmp_path / "run2"), base)  # other weights, version 2
        deadline = time.monotonic() + 60
        while client.status() != {2: "AVAILABLE", 1: "END"}:
            assert time.monotonic() < deadline, client.status()
            time.sleep(0.1)
        assert not np.array_equal(client.generate(2), first)


def test_no_version_is_a_clear_error_at_start(tmp_path):
    (tmp_path / "wgan" / "not-a-version").mkdir(parents=True)
    with pytest.raises(ConfigError, match="no model version"):
        ModelServer(tmp_path / "wgan", port=0).start()


def test_server_down_is_one_clear_error():
    with Client("localhost:1", timeout=10) as client, pytest.raises(ServerError) as raised:
        client.generate(1)
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert "no server answering at localhost:1" in str(raised.value)


def grid_cells(path, columns, size, padding=2):
    """The images of a grid that ``wgan-tf generate`` wrote (enlarged to >= 256 pixels)."""
    picture = np.asarray(Image.open(path))
    scale = picture.shape[1] // (columns * (size + padding) + padding)
    picture = picture[::scale, ::scale]
    rows = (picture.shape[0] - padding) // (size + padding)
    step = size + padding
    return np.stack([picture[padding + r * step:padding + r * step + size,
                             padding + c * step:padding + c * step + size]
                     for r in range(rows) for c in range(columns)])


def test_cli_serve_generate_and_sigterm(base, tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "wgan_tf.cli", "serve", "--model-base-path",
                               str(base), "--port", str(port)],
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        address = f"localhost:{port}"
        grid, each = tmp_path / "grid.png", tmp_path / "each"
        wgan_tf("generate", "--server", address, "--num", "10", "--seed", "3", "--out", grid,
                "--wait", "120")
        # 4 columns, 3 rows, padding 2, enlarged 4x (nearest) to be at least 256 pixels wide
        assert Image.open(grid).size == (4 * (4 * 18 + 2), 4 * (3 * 18 + 2))
        wgan_tf("generate", "--server", address, "--num", "2", "--seed", "3", "--out", f"{each}/")
        assert sorted(p.name for p in each.iterdir()) == ["seed_3.png", "seed_4.png"]
        # A strip of 4 from seed 3 to seed 4: its ends are those two images.
        wgan_tf("generate", "--server", address, "--interpolate", "3", "4", "--steps", "4",
                "--out", tmp_path / "strip.png")
        strip = grid_cells(tmp_path / "strip.png", columns=4, size=16)
        assert len(strip) == 4
        np.testing.assert_array_equal(strip[0], Image.open(each / "seed_3.png"))
        np.testing.assert_array_equal(strip[3], Image.open(each / "seed_4.png"))
        wgan_tf("generate", "--server", address, "--num", "4", "--seed", "3", "--truncation",
                "0.5", "--out", tmp_path / "truncated.png")
        with Client(address) as client:
            expected = client.generate(4, seed=3, truncation=0.5)
        np.testing.assert_array_equal(grid_cells(tmp_path / "truncated.png", 2, 16), expected)
    finally:
        server.send_signal(signal.SIGTERM)
        _, log = server.communicate(timeout=60)
    assert server.returncode == 0, log
    assert "shutting down" in log


@pytest.mark.parametrize("flags, message", [
    (["--steps", "4", "--out", "a.png"], "--steps is the length of an --interpolate strip"),
    (["--interpolate", "1", "2", "--out", "strip/"], "--interpolate writes one FILE.png"),
    (["--interpolate", "1", "2", "--truncation", "0.5", "--out", "a.png"],
     "--truncation draws --num images"),
    (["--interpolate", "1", "2", "--steps", "1", "--out", "a.png"], "--steps must be at least 2"),
    (["--truncation", "-1", "--out", "a.png"], "--truncation must be >= 0, got -1.0"),
    (["--truncation", "nan", "--out", "a.png"], "--truncation must be >= 0, got nan"),
    (["--reconstruct", "in.png", "--label", "3", "--out", "a.png"],
     "--reconstruct takes no --label"),
])
def test_generate_refuses_flag_combinations_in_one_line(flags, message, capsys):
    from wgan_tf import cli

    assert cli.main(["generate", "--server", "localhost:1", *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"wgan-tf generate: error: {message}"), err


@pytest.mark.parametrize("which", ["--port", "--rest-port"])
def test_serve_on_a_busy_port_is_one_line(base, which):
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = {"--port": free_port(), "--rest-port": free_port(), which: port}
        result = subprocess.run([sys.executable, "-m", "wgan_tf.cli", "serve", "--model-base-path",
                                 str(base), *(str(x) for kv in ports.items() for x in kv)],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("wgan-tf serve: error: cannot listen on ") and str(port) in last, last
    assert "Traceback" not in result.stderr


def test_tf_serving_config_files():
    """serving/*.config parse as TF Serving reads them (models.config and batching.config
    are checked further in test_model_config.py and test_batching.py)."""
    root = Path(__file__).resolve().parents[1] / "serving"
    models = config_files.model_configs(root / "models.config")
    assert "wgan" in [m.name for m in models]
    assert config_files.prometheus_path(root / "monitoring.config") == \
        "/monitoring/prometheus/metrics"
