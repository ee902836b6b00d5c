"""The turn-taking protocol by which benchmarks/train_throughput.py --turns times its step and
PyTorch's iteration by iteration (benchmarks/turns.py, both children's side of it)."""
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from turns import take_turns  # noqa: E402


def test_one_timed_iteration_per_go_until_stop():
    calls = []
    out = io.StringIO()
    result = take_turns(lambda: calls.append(len(calls)) or len(calls), "the code",
                        stdin=io.StringIO("go\ngo\nstop\ngo\n"), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "TURN ready the code"
    assert len(calls) == 2 and result == 2  # the "go" after "stop" is not run
    assert [line.split()[0] for line in lines[1:]] == ["TURN", "TURN"]
    assert all(float(line.split()[1]) >= 0 for line in lines[1:])


def test_a_closed_stdin_ends_the_turns():
    out = io.StringIO()
    assert take_turns(lambda: 1, "x", stdin=io.StringIO(""), stdout=out) is None
    assert out.getvalue() == "TURN ready x\n"


def test_train_throughput_times_two_checkouts_in_turns(tmp_path):
    """``train_throughput.py --turns N --against CHECKOUT``: this checkout's step against another
    checkout's package (here a copy of this one's), N timed iterations each, no torch needed."""
    root = Path(__file__).resolve().parents[1]
    other = tmp_path / "checkout"
    shutil.copytree(root / "wgan_tf", other / "wgan_tf",
                    ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "train_throughput.py"), "--arch", "dcgan",
         "--penalty", "clip", "--precision", "float32", "--xla", "off", "--rounds", "0",
         "--iterations", "1", "--image-size", "16", "--batch-size", "4", "--n-critic", "1",
         "--no-torch", "--turns", "2", "--against", str(other)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    turns = json.loads(result.stdout[result.stdout.index("{"):])["turns"]
    assert turns["against"] == str(other)
    assert Path(turns["float32"]["theirs_timed"]) == other / "wgan_tf"
    assert Path(turns["float32"]["ours_timed"]) == root / "wgan_tf"
    assert len(turns["float32"]["ours_seconds"]) == len(turns["float32"]["theirs_seconds"]) == 2
    assert min(turns["float32"]["ours_seconds"] + turns["float32"]["theirs_seconds"]) > 0


def test_a_recipes_step_is_timed_against_another_checkout(tmp_path):
    """``--recipe fast``: the step ``wgan-tf train --recipe fast`` trains (its widths, lazy
    penalty, DiffAugment), in both checkouts; without ``--against`` a one-line error (PyTorch's
    reference has the paper's step only)."""
    root = Path(__file__).resolve().parents[1]
    other = tmp_path / "checkout"
    shutil.copytree(root / "wgan_tf", other / "wgan_tf",
                    ignore=shutil.ignore_patterns("__pycache__"))
    command = [sys.executable, str(root / "benchmarks" / "train_throughput.py"), "--recipe",
               "fast", "--precision", "bfloat16", "--xla", "off", "--rounds", "0",
               "--iterations", "1", "--image-size", "16", "--batch-size", "4", "--turns", "1"]
    result = subprocess.run([*command, "--against", str(other)], capture_output=True, text=True,
                            timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    turns = json.loads(result.stdout[result.stdout.index("{"):])["turns"]["bfloat16"]
    # each child names the recipe of the config it built its step from
    assert turns["theirs_timed"] == f"{other / 'wgan_tf'} --recipe fast"
    assert turns["ours_timed"] == f"{root / 'wgan_tf'} --recipe fast"
    assert min(turns["ours_seconds"] + turns["theirs_seconds"]) > 0
    alone = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert alone.returncode == 2
    assert "--recipe is timed in turns against another checkout only" in alone.stderr


def test_against_a_folder_without_the_package_is_one_line_error(tmp_path):
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "train_throughput.py"), "--turns", "2",
         "--against", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"--against {tmp_path}: no wgan_tf package there" in result.stderr
