"""The ``wgan-tf`` command's face, run as a user runs it: what it prints, what it imports for
``--help``, and the package's lazy attributes."""
import subprocess
import sys

import pytest

from helpers import TINY_FLAGS, WGAN_TF, user_env, wgan_tf

# Lines TensorFlow's C++ side prints while it starts (absl's pre-init notice, I/W/E lines such as
# "failed call to cuInit", cpu_feature_guard, oneDNN): none of them should reach a user by default.
TF_NOISE = ("absl::InitializeLog", "I0000", "W0000", "E0000", "cuInit", "oneDNN",
            "cpu_feature_guard", "rebuild TensorFlow")


def python(code, **env):
    """Runs ``code`` in a fresh interpreter of the test's environment, returns stdout."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=user_env(**env))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_commands_print_their_own_lines_only(tmp_path):
    result = wgan_tf("train", *TINY_FLAGS, "--no-critic-boost", "--steps", 1, "--log-every", 1,
                     "--out", tmp_path / "run")
    printed = result.stdout + result.stderr
    assert not [n for n in TF_NOISE if n in printed], printed
    assert result.stdout.strip() == f"{tmp_path / 'run'}: starting of 1 on 1 CPU device"
    assert result.stderr == ""


def test_verbose_brings_tensorflow_back(tmp_path):
    verbose = wgan_tf("train", *TINY_FLAGS, "--steps", 1, "--verbose", "--out", tmp_path / "a")
    assert "oneDNN" in verbose.stderr or "I0000" in verbose.stderr, verbose.stderr


@pytest.mark.parametrize("level", ["0", "2", "quiet"])
def test_a_users_log_level_quiets_at_least_as_much_as_the_default(tmp_path, level):
    """TF_CPP_MIN_LOG_LEVEL is how people quiet TensorFlow: whatever value a user set, the
    commands print no more than with none (before: absl's start-up lines came back)."""
    result = wgan_tf("train", *TINY_FLAGS, "--no-critic-boost", "--steps", 1, "--log-every", 1,
                     "--out", tmp_path / "run", env=user_env(TF_CPP_MIN_LOG_LEVEL=level))
    printed = result.stdout + result.stderr
    assert not [n for n in TF_NOISE if n in printed], printed
    assert result.stderr == ""


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["serve", "--help"],
                                  ["export", "--help"], ["generate", "--help"],
                                  ["evaluate", "--help"], ["explain", "--help"]])
def test_help_answers_without_importing_tensorflow(argv):
    out = python(
        "import sys\n"
        "from wgan_tf import cli\n"
        "try:\n"
        f"    cli.main({argv!r})\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "print('TENSORFLOW' if 'tensorflow' in sys.modules else 'LIGHT')\n")
    assert out.strip().endswith("LIGHT"), out
    assert "usage: wgan-tf" in out


def test_help_command_prints_usage():
    result = subprocess.run([WGAN_TF, "train", "--help"], capture_output=True, text=True,
                            timeout=60, env=user_env())
    assert result.returncode == 0 and "--model {wgan,gan" in result.stdout
    assert result.stderr == ""


def test_bad_arguments_are_one_line():
    result = subprocess.run([WGAN_TF, "train", "--model", "lsgan", "--out", "x"],
                            capture_output=True, text=True, timeout=60, env=user_env())
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("wgan-tf train: error: argument --model: invalid choice")


def test_import_is_light_and_submodules_load_on_first_use():
    out = python(
        "import sys\n"
        "import wgan_tf\n"
        "print('light' if 'tensorflow' not in sys.modules else 'heavy')\n"
        "g = wgan_tf.models.dcgan_generator(16, 1, latent_dim=4, filters=4)\n"
        "print(g.output_shape)\n"
        "print(wgan_tf.data.load, wgan_tf.metrics.w1_exact, wgan_tf.serving.Client)\n"
        "print(wgan_tf.WGAN.__name__, wgan_tf.GAN.__name__)\n")
    lines = out.strip().splitlines()
    assert lines[0] == "light"
    assert lines[1] == "(None, 16, 16, 1)"
    assert lines[3] == "WGAN GAN"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        import wgan_tf

        wgan_tf.nope  # noqa: B018
