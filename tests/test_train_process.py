"""``wgan-tf train`` as users run it: in fresh processes, on several devices, stopped by signals,
killed with ``kill -9``, and started twice on one run directory."""
import os
import signal
import time

import numpy as np
import pytest

from helpers import (TINY_FLAGS, metrics_rows, saved_weights, start_wgan_tf, wait_for,
                     wgan_tf)

pytestmark = pytest.mark.timeout(600)


def logged_iterations(run_dir):
    return [int(r["generator_iteration"]) for r in metrics_rows(run_dir)]


def assert_same_weights(a, b, **tolerance):
    for name in ("generator", "critic"):
        for x, y in zip(saved_weights(a, name), saved_weights(b, name), strict=True):
            np.testing.assert_allclose(x, y, **(tolerance or dict(rtol=1e-6, atol=1e-7)))


def tensorboard_steps(run_dir, tag="wasserstein"):
    """Steps of a scalar as TensorBoard reads the run (purging what a restart superseded)."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(run_dir, "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    return [e.step for e in events.Tensors(tag)]


# -- several devices from the shell --------------------------------------------------------------

def test_devices_2_on_cpu_trains_the_same_run_as_devices_1(tmp_path):
    runs = {}
    for devices in (1, 2):
        runs[devices] = str(tmp_path / f"devices{devices}")
        result = wgan_tf("train", *TINY_FLAGS, "--no-critic-boost", "--steps", 3,
                         "--log-every", 1, "--devices", devices, "--out", runs[devices])
        assert f"on {devices} CPU device" in result.stdout
    assert_same_weights(runs[1], runs[2], rtol=1e-4, atol=1e-5)
    one, two = metrics_rows(runs[1]), metrics_rows(runs[2])
    assert len(one) == len(two) == 3
    for a, b in zip(one, two):
        for key in ("wasserstein", "critic_loss", "generator_loss"):
            np.testing.assert_allclose(float(b[key]), float(a[key]), rtol=1e-4, atol=1e-6)


# -- interruption --------------------------------------------------------------------------------

BOOSTED = [*TINY_FLAGS, "--critic-boost", "--steps", 6, "--log-every", 1, "--checkpoint-every", 4]


@pytest.fixture(scope="module")
def straight_boosted(tmp_path_factory):
    """An uninterrupted run with the critic boost (100 critic iterations per generator iteration
    here), to compare interrupted ones with."""
    run_dir = str(tmp_path_factory.mktemp("straight") / "run")
    wgan_tf("train", *BOOSTED, "--out", run_dir)
    return run_dir


@pytest.mark.parametrize("signum,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_checkpoints_stops_and_resumes_to_the_same_weights(tmp_path, straight_boosted,
                                                                   signum, status):
    run_dir = str(tmp_path / "run")
    process = start_wgan_tf("train", *BOOSTED, "--out", run_dir)
    wait_for(lambda: len(metrics_rows(run_dir)) >= 2, what="two logged iterations",
             process=process)
    process.send_signal(signum)
    sent = time.monotonic()
    out, err = process.communicate(timeout=60)
    stop_seconds = time.monotonic() - sent
    assert process.returncode == status, err
    message = err.strip().splitlines()[-1]
    name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
    assert message.startswith(f"wgan-tf train: stopped by {name} at generator iteration "), err
    assert "run the same command again to resume" in message
    stopped_at = int(message.split("generator iteration ")[1].split()[0])
    assert 2 <= stopped_at < 6
    assert stop_seconds < 20, stop_seconds
    assert os.path.exists(os.path.join(run_dir, "checkpoints", f"ckpt-{stopped_at}.index"))
    assert not os.path.exists(os.path.join(run_dir, ".lock")) or not _locked(run_dir)

    rerun = wgan_tf("train", *BOOSTED, "--out", run_dir)
    assert f"resuming at generator iteration {stopped_at} of 6" in rerun.stdout, rerun.stdout
    assert logged_iterations(run_dir) == [1, 2, 3, 4, 5, 6]
    assert_same_weights(run_dir, straight_boosted)


def _locked(run_dir):
    import fcntl

    with open(os.path.join(run_dir, ".lock")) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


def test_sigterm_at_64x64_stops_within_seconds(tmp_path):
    """The paper's image size, inside the critic boost: the stop waits for one critic iteration,
    not for the 100 of a boosted generator iteration."""
    run_dir = str(tmp_path / "run")
    process = start_wgan_tf("train", "--dataset", "digits", "--steps", 10, "--quiet",
                            "--jit-compile", "off", "--out", run_dir)
    wait_for(lambda: os.path.exists(os.path.join(run_dir, "config.json")), what="the run to start",
             process=process)
    time.sleep(15)  # inside the first (boosted) generator iteration's critic iterations
    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    _, err = process.communicate(timeout=120)
    stop_seconds = time.monotonic() - sent
    print(f"SIGTERM at 64x64: stopped in {stop_seconds:.1f} s")
    assert process.returncode == 143, err
    assert "stopped by SIGTERM at generator iteration 0 of 10" in err
    assert stop_seconds < 20, stop_seconds


def sigterm_after_two_rows(flags, run_dir):
    """Starts a long run, sends SIGTERM once two iterations are logged; returns its last line."""
    process = start_wgan_tf("train", *flags, "--steps", 1000, "--out", run_dir)
    wait_for(lambda: len(metrics_rows(run_dir)) >= 2, what="two logged iterations",
             process=process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    return err.strip().splitlines()[-1]


def test_sigterm_between_iterations_logs_the_iteration_it_stops_at(tmp_path):
    """Without the boost the stop comes at a step boundary: the iteration checkpointed there was
    logged too, so the resumed run has every row once."""
    run_dir = str(tmp_path / "run")
    flags = [*TINY_FLAGS, "--no-critic-boost", "--log-every", 1, "--checkpoint-every", 100]
    message = sigterm_after_two_rows(flags, run_dir)
    stopped_at = int(message.split("generator iteration ")[1].split()[0])
    rerun = wgan_tf("train", *flags, "--steps", stopped_at + 2, "--out", run_dir)
    assert f"resuming at generator iteration {stopped_at} of" in rerun.stdout, rerun.stdout
    assert logged_iterations(run_dir) == list(range(1, stopped_at + 3))


WAE_FLAGS = ["--model", "wae", "--dataset", "digits:train", "--image-size", 16, "--channels", 1,
             "--filters", 8, "--batch-size", 8, "--epoch-steps", 3, "--log-every", 1,
             "--checkpoint-every", 100, "--jit-compile", "off", "--seed", 4, "--quiet"]


def test_sigterm_stops_and_resumes_an_autoencoder(tmp_path):
    """The same stop for the other families (their step is an encoder/decoder iteration)."""
    run_dir = str(tmp_path / "run")
    message = sigterm_after_two_rows(WAE_FLAGS, run_dir)
    assert message.startswith("wgan-tf train: stopped by SIGTERM at iteration "), message
    stopped_at = int(message.split("at iteration ")[1].split()[0])
    rerun = wgan_tf("train", *WAE_FLAGS, "--steps", stopped_at + 2, "--out", run_dir)
    assert f"resuming at iteration {stopped_at} of {stopped_at + 2}" in rerun.stdout, rerun.stdout
    rows = [int(r["iteration"]) for r in metrics_rows(run_dir)]
    assert rows == list(range(1, stopped_at + 3))
    straight = str(tmp_path / "straight")
    wgan_tf("train", *WAE_FLAGS, "--steps", stopped_at + 2, "--out", straight)
    for name in ("encoder", "decoder"):
        for x, y in zip(saved_weights(run_dir, name), saved_weights(straight, name), strict=True):
            np.testing.assert_array_equal(x, y)


# -- crashes -------------------------------------------------------------------------------------

def test_kill_9_between_checkpoints_then_resume_logs_each_iteration_once(tmp_path):
    run_dir = str(tmp_path / "run")
    flags = [*TINY_FLAGS, "--no-critic-boost", "--log-every", 1, "--checkpoint-every", 4]
    process = start_wgan_tf("train", *flags, "--steps", 1000, "--out", run_dir)
    # Past the checkpoint at 4, before the one at 8: rows 5.. are logged but not checkpointed.
    wait_for(lambda: len(metrics_rows(run_dir)) >= 6, what="six logged iterations",
             process=process)
    process.kill()
    process.wait()
    killed_after = logged_iterations(run_dir)
    rerun = wgan_tf("train", *flags, "--steps", 12, "--out", run_dir)
    resumed_at = int(rerun.stdout.split("resuming at generator iteration ")[1].split()[0])
    assert resumed_at in (4, 8) and resumed_at < killed_after[-1], (rerun.stdout, killed_after)
    assert logged_iterations(run_dir) == list(range(1, 13)), killed_after
    assert tensorboard_steps(run_dir) == list(range(1, 13))
    straight = str(tmp_path / "straight")
    wgan_tf("train", *flags, "--steps", 12, "--out", straight)
    assert_same_weights(run_dir, straight)


def test_a_second_run_on_a_live_run_directory_refuses(tmp_path):
    run_dir = str(tmp_path / "run")
    first = start_wgan_tf("train", *TINY_FLAGS, "--steps", 100000, "--out", run_dir)
    try:
        wait_for(lambda: os.path.exists(os.path.join(run_dir, "config.json")),
                 what="the first run to start", process=first)
        second = wgan_tf("train", *TINY_FLAGS, "--steps", 100000, "--out", run_dir, check=False)
        assert second.returncode == 2
        assert second.stderr.strip() == (
            f"wgan-tf train: error: {run_dir} is being trained by pid {first.pid}; wait for it to "
            "finish or stop it, or use another --out")
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 143


def test_steps_per_execution_trains_the_same_run_and_stops_within_one_iteration(tmp_path):
    """--steps-per-execution K runs K generator iterations per call of the train function (fit's
    callbacks once per call): the same run, the critic boost included, bit for bit; a SIGTERM still
    stops at the next iteration, not the end of the call."""
    flags = [*TINY_FLAGS, "--critic-boost", "--log-every", 6, "--checkpoint-every", 6]
    runs = {k: str(tmp_path / f"k{k}") for k in (1, 3)}
    for k, run_dir in runs.items():
        wgan_tf("train", *flags, "--steps", 14, "--steps-per-execution", k, "--out", run_dir)
    assert logged_iterations(runs[3]) == [6, 12, 14]
    assert metrics_rows(runs[1]) == metrics_rows(runs[3])
    assert_same_weights(runs[1], runs[3], rtol=0, atol=0)

    run_dir = str(tmp_path / "stopped")
    call = 100000  # iterations per call: far more than the 8 s below can run on any machine
    long = [*TINY_FLAGS, "--no-critic-boost", "--log-every", call, "--checkpoint-every", call,
            "--steps-per-execution", call]
    process = start_wgan_tf("train", *long, "--steps", 2 * call, "--out", run_dir)
    wait_for(lambda: os.path.exists(os.path.join(run_dir, "config.json")), what="the start",
             process=process)
    time.sleep(8)  # inside the first call
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    stopped_at = int(err.strip().splitlines()[-1].split("generator iteration ")[1].split()[0])
    assert 0 < stopped_at < call, err
    assert os.path.exists(os.path.join(run_dir, "checkpoints", f"ckpt-{stopped_at}.index"))
