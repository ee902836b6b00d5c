"""The Dockerfile, .dockerignore and health checks, checked without Docker.

The `serving` stage starts from tensorflow/serving, which CI cannot pull, so what that image
expects is checked here: a pinned tag matching the exporter, the model where
tensorflow_model_server looks for it under the name clients ask for, every config file it is told
to read copied in, a non-root user and a health check that really parses TF Serving's model
status. docker/test.sh builds and runs the other images for real.
"""
import argparse
import http.server
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.protobuf import text_format
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "wgan"


# --- a small Dockerfile reader -----------------------------------------------------------------

def instructions(text):
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    pairs, pending = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical, pending = (pending + line).strip(), ""
        if logical:
            word, _, rest = logical.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def expand(value, variables):
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)",
                  lambda m: variables.get(m[1] or m[3], m[2] or ""), value)


class Stage:
    def __init__(self, name, base):
        self.name, self.base, self.steps = name, base, []

    def all(self, word):
        return [rest for w, rest in self.steps if w == word]

    def last(self, word):
        found = self.all(word)
        return found[-1] if found else None

    @property
    def args(self):
        return dict(rest.partition("=")[::2] for rest in self.all("ARG"))

    @property
    def env(self):
        return dict(token.partition("=")[::2] for rest in self.all("ENV") for token in shlex.split(rest))

    def exec_form(self, word):
        rest = self.last(word)
        return json.loads(rest) if rest else None

    def copies(self):
        """(sources, destination, --from) of each COPY, build arguments expanded."""
        found = []
        for rest in self.all("COPY"):
            tokens = [expand(t, self.args) for t in shlex.split(rest)]
            flags = dict(t[2:].partition("=")[::2] for t in tokens if t.startswith("--"))
            paths = [t for t in tokens if not t.startswith("--")]
            found.append((paths[:-1], paths[-1], flags.get("from")))
        return found

    def healthcheck(self):
        """(options, command list) of the HEALTHCHECK."""
        rest = self.last("HEALTHCHECK")
        assert rest, f"stage {self.name} has no HEALTHCHECK"
        options, _, command = rest.partition("CMD")
        assert command.strip().startswith("["), f"stage {self.name}: use the exec form"
        opts = dict(o[2:].partition("=")[::2] for o in options.split())
        return opts, json.loads(command)


def read_dockerfile(path=ROOT / "Dockerfile"):
    """({global ARG: default}, {stage name: Stage}) in file order."""
    global_args, stages, current = {}, {}, None
    for word, rest in instructions(path.read_text()):
        if word == "FROM":
            m = re.fullmatch(r"(?:--\S+\s+)*(\S+)\s+AS\s+(\S+)", rest, re.I)
            assert m, f"every stage is named: FROM {rest}"
            current = stages[m[2]] = Stage(m[2], expand(m[1], global_args))
        elif current is None:
            assert word == "ARG", f"{word} before the first FROM"
            name, _, default = rest.partition("=")
            global_args[name] = default
        else:
            current.steps.append((word, rest))
    return global_args, stages


@pytest.fixture(scope="module")
def stages():
    return read_dockerfile()[1]


def setup_pin(name):
    (version,) = re.findall(rf'"{re.escape(name)}==([\w.]+)"', (ROOT / "setup.py").read_text())
    return version


def flags(command):
    return dict(arg[2:].partition("=")[::2] for arg in command if arg.startswith("--"))


# --- the stages --------------------------------------------------------------------------------

def test_stages_and_their_order(stages):
    assert list(stages) == ["python", "deps", "source", "app", "train", "serving-python", "serving"]
    assert stages["serving"].base.startswith("tensorflow/serving:")
    # BuildKit builds only what a target needs: no Python stage may depend on the serving one.
    for name in ("train", "serving-python"):
        stage = stages[name]
        while stage is not None:
            assert stage.name != "serving"
            assert all(origin != "serving" for _, _, origin in stage.copies())
            stage = stages.get(stage.base)
    global_args, _ = read_dockerfile()
    assert global_args["PYTHON_IMAGE"] == "python:3.11-slim"
    assert stages["python"].base == "python:3.11-slim"


def test_serving_base_is_the_pinned_tf_serving_of_the_exporter(stages):
    repository, _, tag = stages["serving"].base.partition(":")
    assert repository == "tensorflow/serving"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"pin an exact release, not {tag!r}"
    # The server must know every op the exporting TensorFlow writes, and the client's protos
    # come from the same release.
    assert tag == setup_pin("tensorflow-serving-api")
    assert tag.split(".")[:2] == setup_pin("tensorflow").split(".")[:2]


@pytest.mark.parametrize("stage", ["serving", "serving-python"])
def test_models_are_where_the_server_looks_under_the_names_clients_ask_for(stages, stage):
    """Both servers read serving/models.config, copied in; each of its models' base paths is
    filled from a build argument that defaults to where `wgan-tf export` writes it."""
    s = stages[stage]
    command = s.exec_form("CMD")
    config_file = (flags(command)["model_config_file"] if stage == "serving"
                   else command[command.index("--model-config-file") + 1])
    source = next(src for srcs, dest, _ in s.copies() for src in srcs
                  if dest.rstrip("/") + "/" + Path(src).name == config_file)
    assert source == "serving/models.config"
    config = text_format.Parse((ROOT / source).read_text(),
                               model_server_config_pb2.ModelServerConfig())
    models = {m.name: m.base_path for m in config.model_config_list.config}
    assert set(models) == {MODEL_NAME, "flowers"}
    from wgan_tf import arguments

    parser = argparse.ArgumentParser()
    arguments.export(parser)
    assert s.args["MODEL_DIR"] == parser.get_default("out") == "saved_models/wgan"
    assert s.args["FLOWERS_DIR"] == "saved_models/flowers"
    for name, base_path in models.items():
        assert ([f"saved_models/{name}"], base_path, None) in s.copies(), name
    if stage == "serving":
        # models.config overrides the entrypoint's --model_name=$MODEL_NAME
        # --model_base_path=$MODEL_BASE_PATH/$MODEL_NAME, which must still name a model.
        assert models[s.env["MODEL_NAME"]] == f"{s.env['MODEL_BASE_PATH']}/{s.env['MODEL_NAME']}"
    else:
        assert s.exec_form("ENTRYPOINT") == ["dumb-init", "--", "wgan-tf", "serve"]


def test_serving_python_reads_the_copied_configs(stages):
    """The same files as tensorflow_model_server, in this CLI's spelling, parsed by its own
    parser; batching and metrics on, the REST port that serves metrics and readiness open."""
    from wgan_tf.cli import build_parser

    s = stages["serving-python"]
    args = build_parser().parse_args(s.exec_form("ENTRYPOINT")[3:] + s.exec_form("CMD"))
    copied = {dest.rstrip("/") + "/" + Path(src).name: src
              for srcs, dest, origin in s.copies() if origin is None for src in srcs}
    assert args.enable_batching and args.rest_port == 8501 and args.port == 8500
    for path, name in ((args.model_config_file, "models.config"),
                       (args.batching_parameters_file, "batching.config"),
                       (args.monitoring_config_file, "monitoring.config")):
        assert copied.get(path) == f"serving/{name}", path
    assert set(s.last("EXPOSE").split()) == {"8500", "8501"}


def test_serving_reads_the_copied_configs_with_batching_and_monitoring(stages):
    s = stages["serving"]
    entrypoint, command = s.exec_form("ENTRYPOINT"), s.exec_form("CMD")
    # The upstream entrypoint script adds --port=8500 --rest_api_port=8501 and the model flags;
    # dumb-init in front of it passes docker stop's SIGTERM on.
    assert entrypoint == ["/usr/local/bin/dumb-init", "--", "/usr/bin/tf_serving_entrypoint.sh"]
    assert (["/opt/venv/bin/dumb-init"], "/usr/local/bin/dumb-init", "python") in s.copies()
    options = flags(command)
    assert options["enable_batching"] == "true"
    files = {name: path for name, path in options.items() if name.endswith("_file")}
    assert set(files) == {"model_config_file", "batching_parameters_file", "monitoring_config_file"}
    copied = {dest.rstrip("/") + "/" + Path(src).name: src
              for srcs, dest, origin in s.copies() if origin is None for src in srcs}
    for name, path in files.items():
        assert path in copied, f"--{name}={path} is not copied into the image"
        assert copied[path].startswith("serving/") and (ROOT / copied[path]).is_file()
    assert {Path(p).name for p in files.values()} == {
        "models.config", "batching.config", "monitoring.config"}
    # Prometheus metrics and the health check use the REST port.
    assert set(s.last("EXPOSE").split()) == {"8500", "8501"}


@pytest.mark.parametrize("stage", ["train", "serving-python", "serving"])
def test_every_image_runs_as_a_non_root_user_with_a_healthcheck(stages, stage):
    user = stages[stage].last("USER")
    assert user and user.split(":")[0] not in ("root", "0")
    options, command = stages[stage].healthcheck()
    assert command and command[0] != "NONE"
    assert {"interval", "timeout", "start-period", "retries"} <= set(options)


def test_python_images_install_pinned_versions_into_a_venv(stages):
    text = (ROOT / "Dockerfile").read_text()
    assert "python3 -m venv" in text
    assert stages["python"].env["PATH"].startswith("/opt/venv/bin:")
    # Every package named on a pip command line carries ==VERSION (the rest come from setup.py).
    unpinned = re.findall(r"pip install (?:--\S+ )*([A-Za-z][\w.-]*)(?!==|[\w.-])", text)
    assert not unpinned, f"unpinned: {unpinned}"
    assert re.search(r"pip install dumb-init==[\d.]+\w*", text)
    # GPU variant by build argument: the and-cuda extra setup.py defines.
    assert stages["deps"].args["TF_VARIANT"] == "cpu"
    assert "[and-cuda]" in text and '"and-cuda"' in (ROOT / "setup.py").read_text()
    assert set(stages["train"].exec_form("VOLUME")) == {"/data", "/runs"}
    assert stages["train"].exec_form("ENTRYPOINT") == ["dumb-init", "--", "wgan-tf"]


# --- the TF Serving health check, run against a stand-in for its REST API ------------------------

class _StatusServer(http.server.ThreadingHTTPServer):
    """Answers GET /v1/models/<name> as tensorflow_model_server does, in a given state."""

    def __init__(self, state):
        self.state, self.paths = state, []
        super().__init__(("127.0.0.1", 0), _StatusHandler)


class _StatusHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.paths.append(self.path)
        if self.path not in (f"/v1/models/{name}" for name in (MODEL_NAME, "flowers")):
            self.send_error(404)
            return
        body = json.dumps({"model_version_status": [{
            "version": "1", "state": self.server.state,
            "status": {"error_code": "OK", "error_message": ""}}]}, indent=1).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _run_healthcheck(command, port):
    env = {"PATH": os.environ["PATH"], "MODEL_NAME": MODEL_NAME, "PORT": str(port)}
    return subprocess.run(command, env=env, timeout=10, capture_output=True).returncode


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("state, healthy", [("AVAILABLE", True), ("LOADING", False), ("END", False)])
def test_serving_healthcheck_reads_the_model_status(stages, state, healthy):
    _, command = stages["serving"].healthcheck()
    assert command[0] == "bash", "the tensorflow/serving image has bash, not curl or wget"
    server = _StatusServer(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert (_run_healthcheck(command, server.server_address[1]) == 0) == healthy
        asked = [f"/v1/models/{MODEL_NAME}", "/v1/models/flowers"]  # both, or stop at the first
        assert server.paths == (asked if healthy else asked[:1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_serving_healthcheck_fails_when_nothing_listens(stages):
    _, command = stages["serving"].healthcheck()
    server = _StatusServer("AVAILABLE")
    port = server.server_address[1]
    server.server_close()
    assert _run_healthcheck(command, port) != 0


# --- docker/healthcheck.py (train and serving-python) ----------------------------------------------

@pytest.fixture(scope="module")
def healthcheck():
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "docker" / "healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_images_run_the_healthcheck_script(stages):
    assert stages["train"].healthcheck()[1] == ["wgan-tf-healthcheck", "progress", "/runs"]
    assert stages["serving-python"].healthcheck()[1] == [
        "wgan-tf-healthcheck", "ready", "http://127.0.0.1:8501/v2/health/ready"]
    assert "docker/healthcheck.py /usr/local/bin/wgan-tf-healthcheck" in stages["app"].last("RUN")


def test_progress_check(healthcheck, tmp_path, monkeypatch):
    monkeypatch.setenv("WGAN_TF_STALL_SECONDS", "60")
    assert healthcheck.training_progress(str(tmp_path))[0]  # nothing written yet
    metrics = tmp_path / "run" / "metrics.csv"
    metrics.parent.mkdir()
    metrics.write_text("generator_iteration\n1\n")
    assert healthcheck.training_progress(str(tmp_path))[0]
    old = time.time() - 120
    os.utime(metrics, (old, old))
    healthy, message = healthcheck.training_progress(str(tmp_path))
    assert not healthy and "120 s ago" in message


@pytest.mark.parametrize("prediction_status, healthy", [
    (health_pb2.HealthCheckResponse.SERVING, True),
    (health_pb2.HealthCheckResponse.NOT_SERVING, False),
    (None, False),  # the service is unknown to the server: NOT_FOUND
])
def test_grpc_check(healthcheck, prediction_status, healthy):
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    if prediction_status is not None:
        servicer.set(healthcheck.PREDICTION_SERVICE, prediction_status)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        ok, message = healthcheck.grpc_health(f"127.0.0.1:{port}")
        assert ok == healthy, message
    finally:
        server.stop(0)


@pytest.mark.parametrize("status, healthy", [(200, True), (503, False), (None, False)])
def test_ready_check(healthcheck, status, healthy):
    """Against `wgan-tf serve`'s answers: 200 when ready, 503 while loading; nothing listening."""
    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status if self.path == "/v2/health/ready" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    url = f"http://127.0.0.1:{server.server_address[1]}/v2/health/ready"
    if status is None:
        server.server_close()
    else:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ok, message = healthcheck.http_ready(url)
        assert ok == healthy, message
    finally:
        if status is not None:
            server.shutdown()
            server.server_close()


# --- .dockerignore -------------------------------------------------------------------------------

def _dockerignore_includes(patterns, path):
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    included = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _pattern_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(c) for c in candidates):
            included = negated
    return included


def _pattern_regex(pattern):
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


@pytest.mark.parametrize("path, included", [
    ("setup.py", True),
    ("README.md", True),
    ("wgan_tf/cli.py", True),
    ("wgan_tf/serving/server.py", True),
    ("docker/healthcheck.py", True),
    ("serving/models.config", True),
    ("serving/batching.config", True),
    ("serving/monitoring.config", True),
    ("saved_models/wgan/1/saved_model.pb", True),
    ("saved_models/wgan/1/variables/variables.index", True),
    ("saved_models/wgan/.tmp-2/saved_model.pb", False),  # an export still being written
    (".venv/bin/python", False),
    (".git/HEAD", False),
    ("runs/bedrooms/checkpoints/ckpt-1.index", False),
    ("run1/metrics.csv", False),
    ("tests/test_wgan.py", False),
    ("docs/DESIGN.md", False),
    ("build/lib/wgan_tf/cli.py", False),
    ("wgan_tf/__pycache__/cli.cpython-311.pyc", False),
    ("wgan_tf.egg-info/PKG-INFO", False),
    (".pytest_cache/v/cache/lastfailed", False),
    ("docker/test.sh", False),
])
def test_dockerignore_lets_in_only_what_images_need(path, included):
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert _dockerignore_includes(patterns, path) == included
