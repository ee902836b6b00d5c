"""Every shell command the docs show, run as a user would run it, so that docs and code cannot
drift apart.

The commands are read from the fenced ``bash`` blocks of README.md, serving/README.md,
docker/README.md, deploy/*/README.md and docs/*.md. Each one is either run here, in a fresh process
and in document order, or listed in ``NOT_RUNNABLE`` with the reason; a command that is neither
fails ``test_every_documented_command_is_run_or_excused``, so a new command in the docs is run or
consciously skipped.

The one shrinking rule (``shrink``), so that a command runs in seconds on a CPU: training runs take 2
iterations, 16x16 images, 8 filters and a batch of 8 (16 on toy data) on at most 2 devices;
datasets that have no local data here (LSUN, other TFDS names, ``lsun-lmdb:``, ``folder:``) become
the built-in ``digits``; ``evaluate`` compares 100 samples and drops ``--inception-weights`` (FID by
path is tested in test_metrics.py); ``make demo`` runs with ``DEMO_STEPS=2``; experiments and
benchmarks get their own smallest settings (``SCRIPT_FLAGS``) and write under the sandbox. A
command that names a run directory, a model base path or a server that the document has not made
gets a tiny one first (of the model family a run directory is named after, e.g. runs/wae; a
conditional one for a name with "conditional" in it; an image it reads: a digit). Ports 8500/8501
become free ports. Each document runs in its own sandbox directory, in which the repository's
.venv, experiments/, benchmarks/ and serving/ are linked.
"""
import dataclasses
import glob
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import WGAN_TF, user_env

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "serving/README.md", "docker/README.md", *sorted(
    str(Path(p).relative_to(ROOT)) for p in glob.glob(str(ROOT / "deploy" / "*" / "README.md"))),
    *sorted(str(Path(p).relative_to(ROOT)) for p in glob.glob(str(ROOT / "docs" / "*.md")))]

DOCKER = "Docker: the container test (docker/test.sh, run by make test) builds the images and " \
         "runs train, export, serving-python and docker compose for real"
# (pattern on the command, reason): the commands that cannot run here.
NOT_RUNNABLE = [
    (r"^make test\b", "this is the suite `make test` runs"),
    (r"^make saved-model\b(?!-)", "tests/test_saved_model.py runs it and compares with the commit"),
    (r"^make saved-model-flowers\b", "an hour of training on 2 CPU cores; "
     "tests/test_saved_model.py checks the committed colour model (loads, serves colour "
     "photographs, small, obeys the class)"),
    (r"(^|\s)docker[ /]|^make docker-", DOCKER),
    (r"^mkdir -p generated$", DOCKER + " (the folder docker compose writes to)"),
    (r"^tensorflow_model_server\b", "TF Serving's binary cannot be installed here; the Python "
     "server answers the same API and its configs are checked in test_serving.py"),
    (r"^kubectl\b", "no Kubernetes cluster here; tests/test_deploy.py validates the manifests "
     "against kubeflow-training's TFJob model"),
    (r"^\.venv/bin/pip install -e '\.\[bench\]'", "installs the optional PyTorch (the bench "
     "extra, hundreds of MB) for the benchmark's comparison columns; the benchmark's documented "
     "runs here use --no-torch, and tests/test_torch_reference.py runs the reference where "
     "torch is installed"),
    (r"^TF_CONFIG=", "one worker of a job across hosts; tests/test_multi_worker.py runs such jobs "
     "as processes on localhost"),
]


@dataclasses.dataclass
class Command:
    doc: str
    line: int
    text: str

    def __str__(self):
        return f"{self.doc}:{self.line}: {self.text}"


def documented_commands(doc):
    """The commands of ``doc``'s ```bash blocks: continuation lines joined, comments dropped."""
    commands, block, start = [], None, 0
    lines = (ROOT / doc).read_text().splitlines()
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            block = line[3:].strip() if block is None else None
            continue
        if block != "bash":
            continue
        if start and commands and commands[-1].text.endswith("\\"):
            commands[-1].text = commands[-1].text[:-1].rstrip() + " " + line.strip()
        else:
            commands.append(Command(doc, number, line.strip()))
            start = number
    for command in commands:
        command.text = _strip_comment(command.text)
    return [c for c in commands if c.text]


def _strip_comment(text):
    """``text`` up to its comment: the first '#' outside quotes that begins a word."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i].rstrip()
    return text.strip()


def excuse(command):
    """The reason ``command`` is not run, or None."""
    return next((reason for pattern, reason in NOT_RUNNABLE if re.search(pattern, command.text)),
                None)


# -- The shrinking rule --------------------------------------------------------------------------

TINY = {"--steps": "2", "--image-size": "16", "--filters": "8", "--batch-size": "8",
        "--log-every": "1", "--sample-every": "1", "--jit-compile": "off"}
LOCAL_DATASETS = ("digits", "toy:")
SCRIPT_FLAGS = {  # the smallest settings of each documented script: flag -> value (True: a switch)
    "benchmarks/train_throughput.py": {"--iterations": "1", "--image-size": "16", "--xla": "off",
                                       "--precision": "float32", "--cli-steps": "30",
                                       "--no-torch": True, "--rounds": "1"},
    "benchmarks/serving.py": {"--repeats": "3", "--repeats-64": "1"},
    "benchmarks/serving_load.py": {"--clients": "1", "--images": "1", "--seconds": "1",
                                   "--overload-clients": "4", "--soak-seconds": "2",
                                   "--image-size": "16"},
    "benchmarks/input_pipeline.py": {"--images": "64", "--seconds": "1", "--warmup": "2"},
    "benchmarks/multi_worker.py": {"--iterations": "1", "--image-size": "16", "--batch-size": "8",
                                   "--timeout": "300"},
    "experiments/paper_claims.py": {"--steps": "2"},
    # its own runs directory: the smoke runs (batch 100) would otherwise hold the --out of the
    # documented single run, which the docs test shrinks to batch 8
    "experiments/autoencoders.py": {"--steps": "2", "--filters": "8", "--seeds": "0",
                                    "--runs": "runs/smoke-autoencoders"},
    "experiments/critic_claims.py": {"--smoke": True},
    "experiments/photos.py": {"--smoke": True},
    "experiments/conditional.py": {"--smoke": True},
    "experiments/precision.py": {"--toy-steps": "2", "--digits-steps": "2", "--trace-steps": "2"},
    "experiments/recipes.py": {"--smoke": True},
    "experiments/ema.py": {"--smoke": True},
    "experiments/served.py": {"--num": "4"},
    "benchmarks/profile_step.py": {"--image-size": "16", "--iterations": "1", "--warmup": "1"},
    "benchmarks/batch_norm.py": {"--image-size": "16", "--iterations": "1", "--warmup": "1",
                                 "--rounds": "1"},
    "benchmarks/layer_kernels.py": {"--image-size": "16", "--filters": "8", "--batch": "8",
                                    "--calls": "1", "--rounds": "1"},
}


def set_flag(argv, flag, value):
    """``argv`` with ``flag`` set to ``value`` (replaced, or appended); ``value`` None drops it."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == flag:
            skip = True
            continue
        if arg.startswith(flag + "="):
            continue
        out.append(arg)
    return out if value is None else out + [flag, value]


def flag(argv, name, default=None):
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def shrink_train(argv):
    dataset = flag(argv, "--dataset", "digits")
    if not dataset.startswith(LOCAL_DATASETS):
        argv = set_flag(argv, "--dataset", "digits")
        dataset = "digits"
    for name, value in TINY.items():
        argv = set_flag(argv, name, value)
    if dataset.startswith("toy:"):
        argv = set_flag(argv, "--batch-size", "16")
    devices = int(flag(argv, "--devices", "1"))
    argv = set_flag(argv, "--devices", str(min(devices, 2)))
    return set_flag(argv, "--data-dir", None) + ["--quiet"]


class Sandbox:
    """A document's working directory, its servers and the tiny stand-ins it is given."""

    def __init__(self, path):
        self.path = path
        for name in (".venv", "experiments", "benchmarks", "serving"):
            (path / name).symlink_to(ROOT / name)
        self.servers = {}  # documented gRPC port -> (process, grpc port, rest port)
        self.env = user_env(PATH=f"{Path(WGAN_TF).parent}{os.pathsep}{os.environ['PATH']}")

    def run(self, argv, timeout=600):
        result = subprocess.run(argv, cwd=self.path, capture_output=True, text=True,
                                timeout=timeout, env=self.env)
        return result

    def wgan_tf(self, *argv):
        result = self.run([WGAN_TF, *argv])
        assert result.returncode == 0, f"wgan-tf {' '.join(argv)}:\n{result.stdout}\n{result.stderr}"
        return result

    def ensure_run(self, run_dir):
        """A tiny run, of the model family the directory is named after (runs/wae, runs/vae,
        runs/gan), else a WGAN; a directory named ``*conditional*``, or ``flowers`` (the colour
        model is conditional), gets a tiny conditional generator with the flowers' classes
        (``helpers.make_conditional_run``)."""
        name = Path(run_dir).name
        if ("conditional" in name or name == "flowers") and not (self.path / run_dir).exists():
            from helpers import make_conditional_run

            make_conditional_run(self.path / run_dir)
        if not (self.path / run_dir / "config.json").exists():
            family = Path(run_dir).name.split("-")[0]
            model = family if family in ("wae", "vae", "gan") else "wgan"
            self.wgan_tf("train", *shrink_train(["--model", model, "--image-size", "16",
                                                 "--channels", "1", "--out", run_dir]))

    def ensure_model(self, base):
        if not list((self.path / base).glob("[0-9]*/saved_model.pb")):
            # saved_models/flowers stands in for the committed colour model: conditional on the
            # flowers' classes as it is (ensure_run).
            run = "runs/stand-in-conditional" if Path(base).name == "flowers" else "runs/stand-in"
            self.ensure_run(run)
            self.wgan_tf("export", run, "--out", base)

    def serve(self, argv):
        """Starts ``wgan-tf serve ARGV`` on free ports, with a tiny model at every base path it
        names (``--model-base-path``, or each model of ``--model-config-file``); returns once
        every model serves (grpc port, rest port)."""
        documented = int(flag(argv, "--port", "8500"))
        if documented in self.servers:  # the document starts another server on that port
            self.stop(documented)
        config = flag(argv, "--model-config-file")
        if config:
            from wgan_tf.serving import config_files

            models = [(m.name, m.base_path) for m in config_files.model_configs(
                self.path / config)]
        else:
            models = [(flag(argv, "--model-name", "wgan"),
                       flag(argv, "--model-base-path", "saved_models/wgan"))]
        for _, base in models:
            self.ensure_model(base)
        grpc_port, rest_port = free_port(), free_port()
        argv = set_flag(set_flag(argv, "--port", str(grpc_port)), "--rest-port", str(rest_port))
        process = subprocess.Popen([WGAN_TF, *argv], cwd=self.path, env=self.env,
                                   stderr=subprocess.PIPE, text=True)
        self.servers[documented] = (process, grpc_port, rest_port)
        from wgan_tf.serving import Client

        for name, _ in models:
            with Client(f"localhost:{grpc_port}", model_name=name) as client:
                client.wait_until_ready(180)
        return grpc_port, rest_port

    def server_for(self, port):
        """The document's server on ``port``, or one like the images': the two models of
        serving/models.local.config, with metrics."""
        if port not in self.servers:
            self.serve(["serve", "--port", str(port), "--model-config-file",
                        "serving/models.local.config", "--monitoring-config-file",
                        "serving/monitoring.config"])
        return self.servers[port]

    def stop(self, documented):
        process, _, _ = self.servers.pop(documented)
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=60)
        assert process.returncode == 0, log

    def close(self):
        for documented in list(self.servers):
            self.stop(documented)

    def ensure_image(self, path):
        """A digit as a PNG, where a command reads an image the document does not make."""
        if not (self.path / path).exists():
            from PIL import Image

            from wgan_tf.data.builtin import digits_array

            Image.fromarray(digits_array(16, 1)[0][0][..., 0]).save(self.path / path)


def free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def run_command(sandbox, command):
    """Runs one documented command by the rule above; fails with the command's output."""
    argv = shlex.split(command.text)
    while argv and re.fullmatch(r"\w+=.*", argv[0]):  # VAR=value prefixes
        key, value = argv.pop(0).split("=", 1)
        sandbox.env[key] = value
    program = argv[0]
    if program == "wgan-tf":
        return run_wgan_tf(sandbox, argv[1:])
    if program == "make" and argv[1:2] == ["demo"]:
        result = sandbox.run(["make", "-C", str(ROOT), "--no-print-directory", "demo",
                              f"DEMO={sandbox.path / 'demo'}", "DEMO_STEPS=2",
                              f"PORT={free_port()}"])
    elif program == "curl":
        url = next(a for a in argv if "localhost:" in a)
        port = int(re.search(r"localhost:(\d+)", url)[1])
        _, _, rest_port = sandbox.server_for(port - 1)  # REST on the gRPC port + 1, as 8500/8501
        argv = [a.replace(f"localhost:{port}", f"localhost:{rest_port}") for a in argv]
        result = sandbox.run(argv + ["--fail", "--max-time", "120"])
    elif program == ".venv/bin/python":
        script = argv[1]
        assert script in SCRIPT_FLAGS, f"no smallest settings for {script} in SCRIPT_FLAGS"
        # Paths into ../shared (the photos) are the repository's neighbour, not the sandbox's.
        rest = [str((ROOT / a).resolve()) if a.startswith("../shared/")
                else "folder:" + str((ROOT / a[len("folder:"):]).resolve())
                if a.startswith("folder:../shared/") else a for a in argv[2:]]
        for name, value in SCRIPT_FLAGS[script].items():
            if value is True:
                rest = rest if name in rest else rest + [name]
            else:
                rest = set_flag(rest, name, value)
        if script == "benchmarks/train_throughput.py" and flag(rest, "--against"):
            # CHECKOUT, another commit's tree: this repository's (both sides time the same
            # package), timed in turns only, as the docs run it
            for name, value in (("--against", str(ROOT)), ("--rounds", "0"), ("--turns", "1")):
                rest = set_flag(rest, name, value)
        if script == "experiments/served.py":  # asks a server started on a (stand-in) export
            sandbox.ensure_model(flag(rest, "--model-base-path"))
            rest = set_flag(rest, "--out", str(sandbox.path / "served.json"))
        elif script.startswith("experiments/"):
            rest = set_flag(rest, "--out", str(sandbox.path / "docs"))
        result = sandbox.run([sys.executable, str(ROOT / script), *rest], timeout=900)
    else:
        raise AssertionError(f"no rule runs {command}: add one, or list it in NOT_RUNNABLE")
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


def run_wgan_tf(sandbox, argv):
    verb = argv[0]
    if verb == "train":
        return sandbox.wgan_tf(*shrink_train(argv))
    if verb == "export":
        sandbox.ensure_run(argv[1])
        return sandbox.wgan_tf(*argv)
    if verb in ("evaluate", "explain"):
        sandbox.ensure_run(argv[1])
        if verb == "evaluate":
            argv = set_flag(set_flag(argv, "--inception-weights", None), "--num", "100")
        return sandbox.wgan_tf(*set_flag(argv, "--data-dir", None))
    if verb == "serve":
        return sandbox.serve(argv)
    if verb == "generate":
        documented = int(flag(argv, "--server", "localhost:8500").rsplit(":", 1)[1])
        _, grpc_port, _ = sandbox.server_for(documented)
        if "--reconstruct" in argv:  # IN.png ... up to the next flag
            for image in argv[argv.index("--reconstruct") + 1:]:
                if image.startswith("--"):
                    break
                sandbox.ensure_image(image)
        return sandbox.wgan_tf(*set_flag(argv, "--server", f"localhost:{grpc_port}"))
    raise AssertionError(f"no rule runs wgan-tf {verb}")


@pytest.mark.parametrize("doc", DOCS)
def test_every_documented_command_is_run_or_excused(doc):
    """Each command matches a rule that runs it, or NOT_RUNNABLE; none is left over."""
    runnable = ("wgan-tf ", "make demo", "curl ", ".venv/bin/python ")
    for command in documented_commands(doc):
        text = re.sub(r"^(\w+=\S+ +)+", "", command.text)
        assert excuse(command) or text.startswith(runnable), f"no rule for {command}"


# docs/RESULTS.md's experiments, each at its smallest, take about 20 minutes on 2 quiet cores.
@pytest.mark.timeout(2700)
@pytest.mark.parametrize("doc", DOCS)
def test_documented_commands_run(doc, tmp_path, capsys):
    sandbox = Sandbox(tmp_path)
    ran, excused = [], []
    try:
        for command in documented_commands(doc):
            reason = excuse(command)
            if reason:
                excused.append(f"{command}  [{reason}]")
                continue
            run_command(sandbox, command)
            ran.append(str(command))
    finally:
        sandbox.close()
    with capsys.disabled():
        print(f"\n{doc}: ran {len(ran)}, not runnable here {len(excused)}")
        for line in ran:
            print(f"  ran  {line}")
        for line in excused:
            print(f"  skip {line}")
    assert ran or excused, f"{doc}: no ```bash block found (a renamed fence would hide them)"
