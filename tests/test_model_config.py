"""`wgan-tf serve --model-config-file`: several models from TF Serving's ModelServerConfig, their
version policies and labels, versions added and removed while serving, the config reloaded from
its file and by ModelService.HandleReloadConfigRequest; and readiness that waits for warm-up."""
import json
import shutil

from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import (model_management_pb2, model_service_pb2_grpc,
                                     prediction_log_pb2, prediction_service_pb2_grpc)

from helpers import wait_for
from test_serving_load import Serve, predict_request
from wgan_tf.export import export_generator
from wgan_tf.models import dcgan_generator
from wgan_tf.serving import Client, ServerError, config_files
from wgan_tf.serving.versions import WARMUP_FILE


def export(root, name, channels, seed, version=None):
    """A fresh 16x16 generator (weights from ``seed``) exported as ``root/name/<version>``."""
    run = root / f"run-{name}-{seed}"
    run.mkdir(parents=True)
    tf.keras.utils.set_random_seed(seed)
    dcgan_generator(image_size=16, channels=channels, latent_dim=8, filters=8).save(
        run / "generator.keras")
    (run / "config.json").write_text(json.dumps({"latent_dim": 8, "image_size": 16,
                                                 "channels": channels, "arch": "dcgan",
                                                 "dataset": "digits"}))
    return export_generator(run, root / name, version=version)


CONFIG = """
model_config_list {{
  config {{ name: "wgan" base_path: "{root}/wgan" model_platform: "tensorflow" }}
  {flowers}
}}
"""
FLOWERS = """config {{
    name: "flowers" base_path: "{root}/flowers" model_platform: "tensorflow"
    model_version_policy {{ all {{}} }}
    version_labels {{ key: "stable" value: 1 }}
    version_labels {{ key: "canary" value: 2 }}
  }}"""


def config_text(root, flowers=True):
    return CONFIG.format(root=root, flowers=FLOWERS.format(root=root) if flowers else "")


def _status(server, name):
    with Client(server.address, model_name=name) as client:
        try:
            return client.status()
        except ServerError as e:
            return e.code.name


def _image(server, name, label=None, seed=3):
    with grpc.insecure_channel(server.address) as channel:
        request = predict_request([seed])
        request.model_spec.name = name
        if label:
            request.model_spec.version_label = label
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=30)
        return tf.make_ndarray(response.outputs["images"])[0]


def test_two_models_versions_labels_and_reloads(tmp_path):
    export(tmp_path, "wgan", channels=3, seed=1)
    export(tmp_path, "flowers", channels=1, seed=2)
    config = tmp_path / "models.config"
    config.write_text(config_text(tmp_path))
    server = Serve(tmp_path, "--model-config-file", config, "--poll-seconds", 0.2,
                   "--model-config-file-poll-wait-seconds", 0.4)
    try:
        assert json.loads(server.get("/v2/health/ready")[1])["models"] == {
            "flowers": True, "wgan": True}
        first = _image(server, "wgan")
        assert first.shape == (16, 16, 3) and _image(server, "flowers").shape == (16, 16, 1)

        # latest { num_versions: 1 }: a new version replaces the old; removing it rolls back
        export(tmp_path, "wgan", channels=3, seed=5)
        wait_for(lambda: _status(server, "wgan") == {2: "AVAILABLE", 1: "END"}, 60, "version 2")
        assert not np.array_equal(_image(server, "wgan"), first)
        shutil.rmtree(tmp_path / "wgan" / "2")
        wait_for(lambda: _status(server, "wgan") == {2: "END", 1: "AVAILABLE"}, 60, "rollback")
        np.testing.assert_array_equal(_image(server, "wgan"), first)

        # all {}: both versions serve, each reachable by its label
        stable = _image(server, "flowers")
        export(tmp_path, "flowers", channels=1, seed=6)
        wait_for(lambda: _status(server, "flowers") == {2: "AVAILABLE", 1: "AVAILABLE"}, 60,
                 "flowers version 2")
        np.testing.assert_array_equal(_image(server, "flowers", "stable"), stable)
        canary = _image(server, "flowers", "canary")
        assert not np.array_equal(canary, stable)
        np.testing.assert_array_equal(_image(server, "flowers"), canary)  # latest: the newest
        status, body = server.get("/v1/models/flowers/labels/canary")
        assert status == 200 and json.loads(body)["model_version_status"][0]["version"] == "2"
        with pytest.raises(grpc.RpcError) as raised:
            _image(server, "flowers", "nightly")
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        # the file changes: flowers is no longer served
        config.write_text(config_text(tmp_path, flowers=False))
        wait_for(lambda: server.get("/v1/models/flowers")[0] == 404, 60, "flowers removed")
        assert _status(server, "wgan") == {2: "END", 1: "AVAILABLE"}

        # HandleReloadConfigRequest: served again as soon as the call returns
        request = model_management_pb2.ReloadConfigRequest()
        text_format.Parse(config_text(tmp_path), request.config)
        with grpc.insecure_channel(server.address) as channel:
            models = model_service_pb2_grpc.ModelServiceStub(channel)
            response = models.HandleReloadConfigRequest(request, timeout=60)
            assert response.status.error_code == 0
            assert _status(server, "flowers") == {2: "AVAILABLE", 1: "AVAILABLE"}
            bad = model_management_pb2.ReloadConfigRequest()
            bad.config.model_config_list.config.add(name="nobase")
            with pytest.raises(grpc.RpcError) as raised:
                models.HandleReloadConfigRequest(bad, timeout=60)
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "has no base_path" in raised.value.details()
        assert _image(server, "flowers").shape == (16, 16, 1)  # a bad reload changes nothing
    finally:
        server.stop()


def test_the_project_model_config_names_both_models():
    """serving/models.config is the one tensorflow_model_server and the images read."""

    root = Path(__file__).resolve().parents[1] / "serving"
    for name, base in (("models.config", "/models"), ("models.local.config", "saved_models")):
        models = config_files.model_configs(root / name)
        assert {(m.name, m.base_path) for m in models} == {
            ("wgan", f"{base}/wgan"), ("flowers", f"{base}/flowers")}
        assert all(m.model_version_policy.latest.num_versions == 1 for m in models)


def test_not_ready_until_warm_up_has_run(tmp_path):
    """A model whose warm-up takes seconds: the REST status says LOADING, readiness 503 and gRPC
    health NOT_SERVING until the warm-up has been replayed; then all three say ready."""
    version = export(tmp_path, "wgan", channels=3, seed=1)
    request = predict_request(np.arange(512))
    with tf.io.TFRecordWriter(str(version / WARMUP_FILE)) as writer:
        log = prediction_log_pb2.PredictionLog()
        log.predict_log.request.CopyFrom(request)
        for _ in range(60):
            writer.write(log.SerializeToString())
    server = Serve(tmp_path, "--model-base-path", tmp_path / "wgan", ready=False)
    seen = set()

    def observe():
        ready = server.get("/v2/health/ready")[0]
        status, body = server.get("/v1/models/wgan")
        states = [s["state"] for s in json.loads(body)["model_version_status"]] if body else []
        with grpc.insecure_channel(server.address) as channel:
            try:
                health = health_pb2.HealthCheckResponse.ServingStatus.Name(
                    health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=5).status)
            except grpc.RpcError:
                health = None
        seen.add((ready, tuple(states), health))
        return ready == 200
    try:
        wait_for(observe, 180, "readiness", server.process)
        assert "60 warm-up requests replayed" in server.log.read_text()
        assert (503, ("LOADING",), "NOT_SERVING") in seen, seen
        assert observe() and (200, ("AVAILABLE",), "SERVING") in seen
    finally:
        server.stop()
