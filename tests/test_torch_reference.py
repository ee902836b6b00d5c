"""benchmarks/torch_reference.py, the PyTorch step the training benchmark compares against, runs:
one iteration of each setting on tiny sizes, in a fresh process as the benchmark runs it. Skipped
where torch is not installed (it is the optional `bench` extra; CI does not install it)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def reference(*args):
    result = subprocess.run([sys.executable, str(BENCHMARKS / "torch_reference.py"),
                             "--iterations", "1", "--warmup", "1", *args],
                            capture_output=True, text=True, timeout=300, cwd=BENCHMARKS)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout[result.stdout.index("{"):])


@pytest.mark.parametrize("arch, penalty", [("dcgan", "clip"), ("dcgan", "gp"), ("mlp", "gp")])
def test_every_setting_runs_in_both_precisions(arch, penalty):
    results = reference("--arch", arch, "--penalty", penalty, "--image-size", "16",
                        "--batch-size", "4", "--n-critic", "2", "--memory-format", "both")
    rates = results["generator_iterations_per_s"]
    formats = ["contiguous"] if arch == "mlp" else ["channels_last", "contiguous"]
    assert set(rates) == {f"{p}/{f}" for p in ("float32", "bfloat16") for f in formats}
    assert all(rate > 0 for rate in rates.values())


def test_imports_no_tensorflow():
    code = ("import sys, torch_reference; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=BENCHMARKS, check=True, timeout=120)


def test_train_throughput_times_ours_and_pytorch_in_turns():
    """``train_throughput.py --turns N``: both warmed-up steps, N timed iterations each, in turns."""
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "train_throughput.py"), "--arch", "dcgan",
         "--penalty", "clip", "--precision", "bfloat16", "--xla", "off", "--rounds", "0",
         "--iterations", "1", "--image-size", "16", "--batch-size", "4", "--n-critic", "2",
         "--turns", "3"], capture_output=True, text=True, timeout=600, cwd=BENCHMARKS)
    assert result.returncode == 0, result.stderr[-3000:]
    turns = json.loads(result.stdout[result.stdout.index("{"):])["turns"]["bfloat16"]
    assert len(turns["ours_seconds"]) == len(turns["theirs_seconds"]) == 3
    assert min(turns["ours_seconds"] + turns["theirs_seconds"]) > 0
    assert turns["ours_over_theirs"] > 0
