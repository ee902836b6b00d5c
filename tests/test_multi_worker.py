"""``wgan-tf train`` as the workers of a multi-worker job (TF_CONFIG, MultiWorkerMirroredStrategy)
on localhost: each worker a fresh process on its own free port, every process killed at the end.

Two workers of one CPU device each must compute the run of one process with two devices (WGAN-GP
on a Chief + Worker layout; weight clipping, through a stop and a resume; the GAN baseline's ``fit``
from Python); a signal to one worker stops both at the same iteration with a checkpoint, and the
rerun resumes exactly; a second job on the same run directory is refused, its worker too; a worker
killed with ``kill -9`` ends the other with one line, within seconds. Together about 2.5 minutes
on 2 cores.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from wgan_tf import distribute
from wgan_tf.errors import ConfigError
from helpers import TINY_FLAGS, WGAN_TF, user_env, wait_for, wgan_tf
from test_train_process import logged_iterations, metrics_rows

METRICS = ("wasserstein", "critic_loss", "generator_loss")


class LocalJob:
    """``wgan-tf ARGS`` (or another ``command``) once per task of a two-task cluster on
    localhost, each with its own ``TF_CONFIG``, output files and ``TMPDIR`` (so that what a worker
    leaves behind shows)."""

    def __init__(self, directory, *args, chief=False, command=WGAN_TF, extra=((), ())):
        # TFJob's two layouts: workers only (worker 0 is the chief), or a Chief replica and workers
        # (``extra``: more arguments for each task)
        self.processes = []
        self.directory = directory
        for i, tf_config in enumerate(distribute.local_cluster(2, chief=chief)):
            args_i = [*args, *extra[i]]
            (directory / f"tmp{i}").mkdir(parents=True)
            env = user_env(TF_CONFIG=tf_config, TMPDIR=str(directory / f"tmp{i}"))
            with open(directory / f"{i}.out", "w") as out, open(directory / f"{i}.err", "w") as err:
                self.processes.append(subprocess.Popen(
                    [command, *map(str, args_i)], stdout=out, stderr=err, env=env,
                    start_new_session=True))

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        for process in self.processes:
            process.wait(max(deadline - time.monotonic(), 0.1))
        return [p.returncode for p in self.processes]

    def out(self, i):
        return (self.directory / f"{i}.out").read_text()

    def err(self, i):
        return (self.directory / f"{i}.err").read_text()

    def leftovers(self):
        """What the workers left in their TMPDIR."""
        return sorted(str(p.relative_to(self.directory))
                      for i in range(len(self.processes))
                      for p in (self.directory / f"tmp{i}").iterdir())

    def kill(self):
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def checkpoint_tensors(run_dir):
    """Every tensor of the run's latest checkpoint (weights, batch-norm statistics, optimizer
    slots, counters)."""
    reader = tf.train.load_checkpoint(os.path.join(run_dir, "checkpoints"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if "OBJECT_GRAPH" not in name and "save_counter" not in name}


def largest_differences(run_dir, reference, metrics=METRICS, step="generator_iteration"):
    """(max weight difference over every checkpoint tensor, max |metric difference| over every
    metrics.csv row) between two runs of the same iterations. A tensor's difference is taken in
    units of its largest value where that exceeds 1 (Adam's second moments, batch-norm
    variances), so that the same round-off weighs the same in every tensor.

    Across workers the all-reduces add in another order than across devices: Adam's first steps
    are about lr * sign(g), so a near-zero gradient rounded the other way moves its weight by up
    to a step (DESIGN.md, known traps). Hence also: under 1 % of the elements may differ by more
    than 1e-6 in those units, checked here."""
    ours, theirs = checkpoint_tensors(run_dir), checkpoint_tensors(reference)
    assert ours.keys() == theirs.keys()
    scaled = {k: np.abs(ours[k].astype(np.float64) - theirs[k]) / max(1.0, np.abs(theirs[k]).max())
              for k in ours if ours[k].size}
    weights = max(float(d.max()) for d in scaled.values())
    differing = sum(int((d > 1e-6).sum()) for d in scaled.values())
    assert differing < 0.01 * sum(d.size for d in scaled.values()), differing
    rows, reference_rows = metrics_rows(run_dir), metrics_rows(reference)
    assert [r[step] for r in rows] == [r[step] for r in reference_rows]
    differences = max(abs(float(a[k]) - float(b[k]))
                      for a, b in zip(rows, reference_rows) for k in metrics)
    return weights, differences


def run_files(run_dir):
    """The run directory's files, TensorBoard's by kind (their names hold a time and a pid)."""
    return sorted(re.sub(r"events\.out\.tfevents\..*\.\d+\.\d+(\.\w+)?$", r"EVENTS\1",
                         os.path.relpath(os.path.join(folder, name), run_dir))
                  for folder, _, names in os.walk(run_dir) for name in names)


def one_line(text):
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


# -- TF_CONFIG, and what a lost worker's errors say (in this process) ---------------------------

def test_tasks_from_tf_config():
    cluster = {"chief": ["c:2222"], "worker": ["w0:2222", "w1:2222"]}
    tasks = [distribute.cluster_task({"TF_CONFIG": json.dumps(
        {"cluster": cluster, "task": {"type": kind, "index": index}})})
        for kind, index in (("chief", 0), ("worker", 0), ("worker", 1))]
    assert [(t.id, t.chief, t.workers, t.name) for t in tasks] == [
        (0, True, 3, "/job:chief/replica:0/task:0"), (1, False, 3, "/job:worker/replica:0/task:0"),
        (2, False, 3, "/job:worker/replica:0/task:1")]
    no_chief = distribute.cluster_task({"TF_CONFIG": json.dumps(
        {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}})})
    assert no_chief.chief and no_chief.workers == 2
    assert distribute.cluster_task({}) is None
    assert distribute.cluster_task({"TF_CONFIG": "{}"}) is None


@pytest.mark.parametrize("tf_config,message", [
    ("{nope", "TF_CONFIG is not JSON"),
    ({"cluster": {"worker": ["a:1"], "ps": ["b:1"]}, "task": {"type": "worker", "index": 0}},
     "a ps job: wgan-tf trains with MultiWorkerMirroredStrategy"),
    ({"cluster": {"worker": ["a:1"]}, "task": {"type": "evaluator", "index": 0}},
     "task type 'evaluator'"),
    ({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}},
     "task worker 1 is not in its cluster"),
    ({"cluster": {"chief": ["a:1", "b:1"]}, "task": {"type": "chief", "index": 0}},
     "more than one chief"),
])
def test_bad_tf_config_is_one_line(tf_config, message):
    text = tf_config if isinstance(tf_config, str) else json.dumps(tf_config)
    with pytest.raises(ConfigError, match=message):
        distribute.cluster_task({"TF_CONFIG": text})


def test_several_cpu_devices_per_worker_are_refused(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", distribute.local_cluster(2)[0])
    with pytest.raises(ConfigError, match="one replica per worker"):
        distribute.make_strategy(2)


@pytest.mark.parametrize("error,line", [
    (tf.errors.UnavailableError(None, None, "Collective ops is aborted by: Error reported from "
                                "/job:worker/task:1: The following tasks are unhealthy (stopped "
                                "sending heartbeats):\n/job:worker/replica:0/task:1\nThe tasks "
                                "have crashed."), "/job:worker/replica:0/task:1 stopped (no heartbeat)"),
    (tf.errors.UnavailableError(None, None, "{{function_node x_/job:worker/replica:0/task:0/device:"
                                "CPU:0}} Collective ops is aborted by: recvmsg:Connection reset by "
                                "peer\nAdditional GRPC error information from remote target "
                                "/job:chief/replica:0/task:0 while calling RecvBuf"),
     "lost contact with /job:chief/replica:0/task:0 (connection reset)"),
    (tf.errors.DeadlineExceededError(None, None, "Collective has timed out during execution."),
     "a collective operation timed out (a worker is stuck or gone)"),
    (tf.errors.InternalError(None, None, "Shape mismatch in the collective instance 100."),
     "the workers went out of step (they ran different collective operations)"),
    (tf.errors.InvalidArgumentError(None, None, "every image of a batch failed to decode"), None),
])
def test_what_a_lost_worker_error_says(error, line):
    lost = distribute.worker_lost(error)
    assert (lost if lost is None else str(lost).split(";")[0]) == line


# -- Two workers compute the run of one process with two devices ---------------------------------

GP = [*TINY_FLAGS, "--penalty", "gp", "--steps", 4, "--log-every", 1, "--checkpoint-every", 2]


@pytest.mark.timeout(300)
def test_chief_and_worker_train_the_run_of_one_process_with_two_devices(tmp_path):
    """WGAN-GP, on TFJob's Chief + Worker layout; only the chief writes the run directory."""
    reference = str(tmp_path / "devices2")
    wgan_tf("train", *GP, "--devices", 2, "--out", reference)
    run_dir = str(tmp_path / "job")
    with LocalJob(tmp_path / "logs", "train", *GP, "--out", run_dir, chief=True) as job:
        assert job.wait(240) == [0, 0], job.err(0) + job.err(1)
    assert "on 2 workers x 1 CPU device (this is /job:chief/replica:0/task:0)" in job.out(0)
    assert "(this is /job:worker/replica:0/task:0)" in job.out(1)
    weights, metrics = largest_differences(run_dir, reference)
    print(f"gp, chief + worker vs --devices 2: max |weight difference| {weights:.3g}, "
          f"max |metric difference| {metrics:.3g}")
    assert weights < 1e-4 and metrics < 1e-5  # 1e-4: one of Adam's first steps
    assert run_files(run_dir) == run_files(reference)  # nothing more, nothing less
    assert job.leftovers() == []


WAE_MMD = ["--model", "wae", "--dataset", "digits", "--image-size", 16, "--channels", 1,
           "--filters", 8, "--batch-size", 8, "--steps", 3, "--log-every", 1, "--jit-compile",
           "off", "--seed", 1, "--quiet"]


@pytest.mark.timeout(300)
def test_two_workers_train_the_wae_mmd_run_of_one_process_with_two_devices(tmp_path):
    """WAE-MMD's penalty is a statistic over all pairs of the global batch: the codes of both
    workers meet in one kernel sum (workers only, worker 0 leading)."""
    reference = str(tmp_path / "devices2")
    wgan_tf("train", *WAE_MMD, "--devices", 2, "--out", reference)
    run_dir = str(tmp_path / "job")
    with LocalJob(tmp_path / "logs", "train", *WAE_MMD, "--out", run_dir) as job:
        assert job.wait(240) == [0, 0], job.err(0) + job.err(1)
    weights, metrics = largest_differences(run_dir, reference, ("objective", "mmd"), "iteration")
    print(f"wae-mmd, 2 workers vs --devices 2: max |weight difference| {weights:.3g}, "
          f"max |metric difference| {metrics:.3g}")
    assert weights < 1e-4 and metrics < 1e-5
    assert run_files(run_dir) == run_files(reference)
    assert job.leftovers() == []


# -- fit from Python: the standard-GAN baseline, a plain dataset and split_batches ---------------

FIT = """
import sys
import numpy as np
from wgan_tf import distribute

strategy = distribute.make_strategy()  # MultiWorkerMirroredStrategy under TF_CONFIG, first
import keras
from wgan_tf import data, models
from wgan_tf.gan import GAN


def fit(make_dataset):
    with strategy.scope():
        keras.utils.set_random_seed(1)  # also digits' shuffle's global seed: before the dataset
        model = GAN(*models.build_pair("dcgan", 16, 1, 8, 8), seed=1)
        model.compile(jit_compile=False)
    model.fit(make_dataset(), steps_per_epoch=3, epochs=1, verbose=0, shuffle=False)
    return [w.numpy() for w in model.generator.weights + model.critic.weights]


plain = fit(lambda: data.load("digits", 16, 8, 1, seed=1))
split = fit(lambda: distribute.split_batches(
    strategy, lambda rows: data.load("digits", 16, 8, 1, seed=1, rows=rows), 8))
np.savez(sys.argv[1], *plain, *split)
"""


@pytest.mark.timeout(240)
def test_fit_from_python_under_tf_config(tmp_path):
    """The GAN baseline's ``fit`` in two worker processes, on a plain dataset and on each worker's
    rows, equals ``fit`` in one process with two devices (MirroredStrategy, this process)."""
    from wgan_tf import data, models
    from wgan_tf.gan import GAN

    with LocalJob(tmp_path / "logs", "-c", FIT, tmp_path / "weights.npz", command=sys.executable,
                  chief=True) as job:
        assert job.wait(180) == [0, 0], job.err(0) + job.err(1)
    strategy = distribute.make_strategy(2)
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = GAN(*models.build_pair("dcgan", 16, 1, 8, 8), seed=1)
        model.compile(jit_compile=False)
    model.fit(data.load("digits", 16, 8, 1, seed=1), steps_per_epoch=3, epochs=1, verbose=0,
              shuffle=False)
    reference = [w.numpy() for w in model.generator.weights + model.critic.weights]
    saved = np.load(tmp_path / "weights.npz")
    weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    assert len(weights) == 2 * len(reference), (len(weights), len(reference))
    plain, split = weights[:len(reference)], weights[len(reference):]
    differences = [max(float(np.max(np.abs(a - b))) for a, b in zip(run, reference))
                   for run in (plain, split)]
    print(f"gan, fit on 2 workers (plain dataset, split_batches) vs 2 devices: max |weight "
          f"difference| {differences}")
    assert max(differences) < 1e-6


# -- A signal to one worker, and the rerun -------------------------------------------------------

CLIP = [*TINY_FLAGS, "--no-critic-boost", "--steps", 8, "--log-every", 1, "--checkpoint-every", 4]


@pytest.mark.timeout(420)
def test_sigterm_to_one_worker_stops_both_and_the_rerun_resumes_exactly(tmp_path):
    reference = str(tmp_path / "devices2")
    wgan_tf("train", *CLIP, "--devices", 2, "--out", reference)
    run_dir = str(tmp_path / "job")
    with LocalJob(tmp_path / "first", "train", *CLIP, "--out", run_dir) as job:
        wait_for(lambda: len(metrics_rows(run_dir)) >= 2, timeout=180, what="two logged iterations",
                 process=job.processes[0])

        job.processes[1].send_signal(signal.SIGTERM)
        sent = time.monotonic()
        assert job.wait(120) == [143, 143], job.err(0) + job.err(1)
        stop_seconds = time.monotonic() - sent
    stopped = [one_line(job.err(i)) for i in range(2)]
    at = int(stopped[1].split("generator iteration ")[1].split()[0])
    assert stopped == [
        f"wgan-tf train: stopped by SIGTERM to another worker at generator iteration {at} of 8, "
        "checkpoint saved; run the same command again to resume",
        f"wgan-tf train: stopped by SIGTERM at generator iteration {at} of 8, checkpoint saved; "
        "run the same command again to resume"]
    assert 2 <= at < 8 and stop_seconds < 30, (at, stop_seconds)
    assert os.path.exists(os.path.join(run_dir, "checkpoints", f"ckpt-{at}.index"))
    print(f"SIGTERM to worker 1: both stopped at generator iteration {at} in {stop_seconds:.1f} s")

    with LocalJob(tmp_path / "rerun", "train", *CLIP, "--out", run_dir) as rerun:
        assert rerun.wait(240) == [0, 0], rerun.err(0) + rerun.err(1)
    assert f"resuming at generator iteration {at} of 8" in rerun.out(0)
    assert logged_iterations(run_dir) == list(range(1, 9))
    weights, metrics = largest_differences(run_dir, reference)
    print(f"clip, 2 workers stopped at {at} and resumed vs --devices 2: max |weight difference| "
          f"{weights:.3g}, max |metric difference| {metrics:.3g}")
    assert weights < 1e-6 and metrics < 1e-6
    assert job.leftovers() == rerun.leftovers() == []


# -- A worker lost ---------------------------------------------------------------------------------

@pytest.mark.timeout(300)
@pytest.mark.parametrize("killed", [1, 0])
def test_a_killed_worker_ends_the_other_with_one_line(tmp_path, killed):
    """kill -9 of the worker or of the chief (the coordination service's leader): the other
    exits 129 with one line naming the lost worker, well within the collective timeout. While the
    first job still runs, a second job on its run directory is refused, its worker too."""
    run_dir = str(tmp_path / "job")
    flags = [*TINY_FLAGS, "--no-critic-boost", "--steps", 100000, "--log-every", 1,
             "--collective-timeout", 60]
    with LocalJob(tmp_path / "logs", "train", *flags, "--out", run_dir) as job:
        wait_for(lambda: len(metrics_rows(run_dir)) >= 1, timeout=180, what="a logged iteration",
                 process=job.processes[0])
        if killed == 1:
            refuses_a_second_job(tmp_path / "second", flags, run_dir, job.processes[0].pid)
        survivor = job.processes[1 - killed]
        job.processes[killed].kill()
        sent = time.monotonic()
        survivor.wait(90)
        seconds = time.monotonic() - sent
    message = one_line(job.err(1 - killed))
    print(f"kill -9 worker {killed}: the other exited {survivor.returncode} after {seconds:.1f} s: "
          f"{message}")
    assert survivor.returncode == 129, job.err(1 - killed)
    lost = f"/job:worker/replica:0/task:{killed}"
    # Which sign of the loss comes first (a missed heartbeat, a reset or closed socket) is a race.
    assert re.fullmatch(
        f"wgan-tf train: error: ({lost} stopped \\(no heartbeat\\)|lost contact with {lost}"
        f"( \\((connection reset|socket closed)\\))?|cannot reach {lost}); stopping this worker "
        "\\(exit 129\\); restart the job to resume from the last checkpoint", message), message
    assert len(job.err(1 - killed).strip().splitlines()) == 1
    assert seconds < 60


def test_workers_started_with_other_settings_are_refused(tmp_path):
    run_dir = str(tmp_path / "job")
    with LocalJob(tmp_path / "logs", "train", *TINY_FLAGS, "--steps", 2, "--out", run_dir,
                  extra=((), ("--n-critic", 3))) as job:
        assert job.wait(120) == [2, 2], job.err(0) + job.err(1)
    for i in (0, 1):
        assert one_line(job.err(i)) == (
            "wgan-tf train: error: the workers of this job were started with different settings; "
            "run the same wgan-tf train command on every worker")


def refuses_a_second_job(directory, flags, run_dir, chief_pid):
    """A second, independent job on a live run directory: its chief is refused, and its worker
    stops with it instead of waiting for it."""
    with LocalJob(directory, "train", *flags, "--out", run_dir) as second:
        assert second.wait(120) == [2, 2], second.err(0) + second.err(1)
    assert one_line(second.err(0)) == (
        f"wgan-tf train: error: {run_dir} is being trained by pid {chief_pid}; wait for it to "
        "finish or stop it, or use another --out")
    assert one_line(second.err(1)) == (
        f"wgan-tf train: error: the chief could not start the run in {run_dir} (its log says "
        "why); stopping with it")


def test_two_workers_train_a_conditional_run_with_ema_and_augmentation_as_two_devices(tmp_path):
    """The photo-era additions under a job: the conditional model's labels (a projection critic),
    DiffAugment's numbers, the generator EMA and its standing statistics, and the fast recipe's
    lazy penalty, drift term, critic without normalisation and two learning rates, and Lookahead
    on both players, are the same on two workers as on two devices of one process."""
    flags = [*GP, "--conditional", "--ema", 0.9, "--augment", "color,translation,cutout",
             "--penalty-every", 2, "--drift", 1e-3, "--critic-normalization", "none",
             "--generator-learning-rate", 5e-5, "--lookahead", 2]
    reference = str(tmp_path / "devices2")
    wgan_tf("train", *flags, "--devices", 2, "--out", reference)
    run_dir = str(tmp_path / "job")
    with LocalJob(tmp_path / "logs", "train", *flags, "--out", run_dir) as job:
        assert job.wait(240) == [0, 0], job.err(0) + job.err(1)
    tensors = checkpoint_tensors(run_dir)
    assert any("generator_ema" in name for name in tensors)
    assert any(name.startswith("lookahead_") for name in tensors), tensors
    weights, metrics = largest_differences(run_dir, reference)
    print(f"conditional + EMA + DiffAugment + Lookahead, 2 workers vs --devices 2: max |weight difference| "
          f"{weights:.3g}, max |metric difference| {metrics:.3g}")
    assert weights < 1e-4 and metrics < 1e-5  # 1e-4: one of Adam's first steps
    assert job.leftovers() == []
