"""Choosing the ``tf.distribute`` strategy: ``--devices N`` on one machine, and
MultiWorkerMirroredStrategy for the workers of a multi-worker job.

One machine: MirroredStrategy over N GPUs, or over N logical CPU devices where there is no GPU.

Several machines: ``TF_CONFIG`` (what Kubeflow's TFJob gives each of its pods) names the cluster
and this process's task, and every worker runs the same command under MultiWorkerMirroredStrategy:
variables are mirrored on every replica of every worker, gradients are all-reduced across workers
(collective ops, RING on CPU, NCCL on GPU). Replica ids are global and in worker order (the chief,
where the cluster has a ``chief`` job, is worker 0; otherwise worker 0 is the chief), and each
worker reads only its own rows of every global batch (``split_batches``), so K workers with M
devices each compute the step of one process with K*M replicas.

What every worker must keep to, or the job's collectives go out of step ("Shape mismatch in the
collective instance") or wait for a missing peer:

- The strategy is made before any TensorFlow op: collective ops are configured at start-up.
- Every worker makes the same collective calls in the same order: the same steps, the same
  decision to stop (``Job.gather``), the same checkpoint saves. Files are written by the chief
  alone (``Job.chief``), with no collective in the writing.
- A collective that waits longer than ``collective_timeout`` seconds for a peer fails (and a peer
  whose process is gone stops sending heartbeats, which ends the others within seconds). The
  timeout must exceed any pause of one worker that the others wait through: the chief's ``.keras``
  saves and sample grids, the first step's tracing.
"""
import dataclasses
import functools
import json
import os
import re
import socket

import numpy as np
import tensorflow as tf

from wgan_tf.config import COLLECTIVE_TIMEOUT
from wgan_tf.errors import ConfigError, WorkerLost


def make_strategy(devices=1, collective_timeout=COLLECTIVE_TIMEOUT):
    """MultiWorkerMirroredStrategy under ``TF_CONFIG`` (``devices`` per worker), otherwise
    MirroredStrategy over ``devices`` GPUs, or over as many logical CPU devices where there is no
    GPU; the default strategy for one device.

    Must run before TensorFlow initialises its devices (before the first op) when it has to split
    the CPU or start collective ops.
    """
    if devices < 1:
        raise ConfigError(f"devices must be positive, got {devices}")
    if cluster_task() is not None:
        return _multi_worker(devices, collective_timeout)
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if devices > len(gpus):
            raise ConfigError(f"--devices {devices} asked for, but only {len(gpus)} GPU(s) found")
        names = [f"/gpu:{i}" for i in range(devices)]
    else:
        names = _logical_cpus(devices)
    if devices == 1:
        return tf.distribute.get_strategy() if not gpus else tf.distribute.OneDeviceStrategy(names[0])
    return _mirrored(tuple(names))


@functools.lru_cache(maxsize=None)
def _mirrored(names):
    # One strategy per device set and process: a second MirroredStrategy over the same devices
    # reuses collective instance keys and its all-reduces can meet the first one's ("Shape mismatch
    # in the collective instance").
    return tf.distribute.MirroredStrategy(list(names))


def _logical_cpus(devices):
    physical = tf.config.list_physical_devices("CPU")[0]
    configured = tf.config.get_logical_device_configuration(physical) or [None]
    if len(configured) < devices:
        try:
            tf.config.set_logical_device_configuration(
                physical, [tf.config.LogicalDeviceConfiguration()] * devices)
        except RuntimeError:
            raise ConfigError(f"cannot split the CPU into {devices} devices after TensorFlow has "
                              f"started with {len(configured)}") from None
    return [d.name for d in tf.config.list_logical_devices("CPU")[:devices]]


# -- Multi-worker jobs ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Task:
    """This process's task in a multi-worker job (from ``TF_CONFIG``)."""

    type: str  # "chief" or "worker"
    index: int
    chiefs: int  # 1 where the cluster has a "chief" job, else 0
    workers: int  # every task that trains: the chief and the workers

    @property
    def id(self):
        """The position among the workers: the chief first, then worker 0, 1, ... (TensorFlow's
        ``id_in_cluster``, the order of the replicas and of the input pipelines)."""
        return 0 if self.type == "chief" else self.chiefs + self.index

    @property
    def chief(self):
        """Whether this task owns the run directory: the chief, or worker 0 without one."""
        return self.id == 0

    @property
    def name(self):
        return f"/job:{self.type}/replica:0/task:{self.index}"


def cluster_task(environ=None):
    """This process's ``Task`` from ``TF_CONFIG``, or None outside a multi-worker job."""
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"TF_CONFIG is not JSON: {e}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not cluster:
        return None
    task = config.get("task") or {}
    kind, index = task.get("type"), task.get("index", 0)
    other = sorted(set(cluster) - {"chief", "worker"})
    if other or kind not in ("chief", "worker"):
        raise ConfigError(
            f"TF_CONFIG has {'a ' + other[0] + ' job' if other else f'task type {kind!r}'}: "
            "wgan-tf trains with MultiWorkerMirroredStrategy, whose tasks are one chief and "
            "workers (no parameter servers, no evaluator)")
    if len(cluster.get("chief", ())) > 1:
        raise ConfigError("TF_CONFIG names more than one chief")
    if not isinstance(index, int) or not 0 <= index < len(cluster.get(kind, ())):
        raise ConfigError(f"TF_CONFIG task {kind} {index} is not in its cluster")
    chiefs = len(cluster.get("chief", ()))
    return Task(kind, index, chiefs, chiefs + len(cluster.get("worker", ())))


def local_cluster(workers, chief=False):
    """``TF_CONFIG`` values (JSON text), one per task, for a job of ``workers`` processes on this
    machine, each task on a port that was free a moment ago (all bound at once, so none twice); the
    first task is a ``chief`` with ``chief=True``, as a TFJob with a Chief replica has. For trying
    a multi-worker job on one machine, and for its tests."""
    sockets = [socket.socket() for _ in range(workers)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        addresses = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    finally:
        for s in sockets:
            s.close()
    tasks = [("chief", 0)] * chief + [("worker", i) for i in range(workers - chief)]
    cluster = {}
    for (kind, _), address in zip(tasks, addresses):
        cluster.setdefault(kind, []).append(address)
    return [json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})
            for kind, index in tasks]


@functools.lru_cache(maxsize=None)
def _multi_worker(devices, collective_timeout):
    # On GPUs every visible GPU is a replica of this worker, so --devices picks the visible ones;
    # this must precede TensorFlow's start, as the strategy itself must.
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if devices > len(gpus):
            raise ConfigError(f"--devices {devices} asked for, but only {len(gpus)} GPU(s) found")
        tf.config.set_visible_devices(gpus[:devices], "GPU")
        implementation = tf.distribute.experimental.CommunicationImplementation.NCCL
    else:
        if devices != 1:
            # TF 2.21's CollectiveAllReduceExtended._initialize_local_devices gives a worker
            # without GPUs one CPU device, whatever the logical device configuration.
            raise ConfigError(
                f"--devices {devices}: a multi-worker job (TF_CONFIG) on CPUs has one replica per "
                "worker (TensorFlow's MultiWorkerMirroredStrategy uses one CPU device per "
                "worker); use --devices 1 and more workers")
        implementation = tf.distribute.experimental.CommunicationImplementation.RING
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=implementation, timeout_seconds=collective_timeout)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def is_chief(strategy):
    """Whether this process writes the run directory (True outside a multi-worker job)."""
    return strategy.extended.should_checkpoint


def split_batches(strategy, load, global_batch):
    """The batches of ``load`` for ``fit`` under ``strategy``: each global batch split over all
    replicas in order, whatever the number of workers and devices.

    ``load(rows)`` gives the stream of global batches (``rows=None``) or their rows
    ``start:stop`` only (``wgan_tf.data.load``'s ``rows``). On one machine this is the stream
    itself, which Keras splits over the local replicas; under a multi-worker strategy each worker
    reads and decodes only its own rows of every global batch (its input pipeline's), which its
    replicas then split.
    """
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        def dataset_fn(context):
            rows = global_batch // context.num_input_pipelines
            start = context.input_pipeline_id * rows
            dataset = load((start, start + rows))
            per_replica = context.get_per_replica_batch_size(global_batch)
            return dataset if per_replica == rows else dataset.rebatch(per_replica,
                                                                       drop_remainder=True)
        return strategy.distribute_datasets_from_function(dataset_fn)
    return load(None)


class Job:
    """The training job as this process sees it: one process, or one worker of a multi-worker
    job (``task``), under ``strategy``.

    ``chief`` owns the run directory. ``gather`` is a collective in a multi-worker job: every
    worker must call it at the same points.
    """

    def __init__(self, strategy, task=None):
        self.strategy, self.task = strategy, task
        self.chief = task is None or task.chief
        self.workers = task.workers if task else 1
        if self.workers > 1:
            @tf.function
            def all_rows(values):
                def replica_fn(values):
                    # tf.identity: an all-gather of the function's input itself fails
                    # ("destinations can not be empty").
                    return tf.distribute.get_replica_context().all_gather(
                        tf.identity(values)[None], axis=0)
                return strategy.experimental_local_results(
                    strategy.run(replica_fn, args=(values,)))[0]
            self._all_rows = all_rows

    @classmethod
    def start(cls, devices=1, collective_timeout=COLLECTIVE_TIMEOUT):
        """This process's job: under ``TF_CONFIG`` a worker of a multi-worker job, otherwise one
        process over ``devices`` devices. Makes the strategy, so it must come first."""
        task = cluster_task()
        return cls(make_strategy(devices, collective_timeout), task)

    def gather(self, *values):
        """Every worker's ``values`` (integers): an int64 array ``[workers, len(values)]``, in
        worker order (the chief first)."""
        mine = np.array([values], np.int64)
        if self.workers == 1:
            return mine
        rows = self._all_rows(tf.constant(mine[0])).numpy()
        return rows[::len(rows) // self.workers]  # one row per replica; keep each worker's first

    def describe(self):
        """E.g. "2 CPU devices", or "2 workers x 1 GPU device (this is /job:chief/...)"."""
        replicas = self.strategy.num_replicas_in_sync // self.workers
        kind = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
        devices = f"{replicas} {kind} device{'s' if replicas > 1 else ''}"
        if self.task is None:
            return devices
        return f"{self.workers} workers x {devices} (this is {self.task.name})"


# -- A worker lost ---------------------------------------------------------------------------------

# What the error messages of TensorFlow's collectives and coordination service say when a peer
# died, hung or went out of step (TF 2.21), most specific first, and what that means for the user
# ({peer}: the first task the message names after the sign).
_LOST = (
    ("stopped sending heartbeats", "{peer} stopped (no heartbeat)"),
    ("Collective has timed out", "a collective operation timed out (a worker is stuck or gone)"),
    ("Shape mismatch in the collective instance",
     "the workers went out of step (they ran different collective operations)"),
    ("Connection reset by peer", "lost contact with {peer} (connection reset)"),
    ("Socket closed", "lost contact with {peer} (socket closed)"),
    ("failed to connect to all addresses", "cannot reach {peer}"),
    ("Collective ops is aborted by:", "lost contact with {peer}"),
)
_TASK = re.compile(r"/job:\w+/replica:\d+/task:\d+")


def worker_lost(error):
    """A ``WorkerLost`` explaining ``error`` (a ``tf.errors.OpError``) when it says that another
    worker of the job died, hung or went out of step; None for other errors."""
    text = str(getattr(error, "message", error))
    for sign, meaning in _LOST:
        where = text.find(sign)
        if where >= 0:
            peer = _TASK.search(text, where)
            return WorkerLost(meaning.format(peer=peer.group(0) if peer else "another worker"))
    if isinstance(error, (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                          tf.errors.AbortedError)):
        first = (text.strip().splitlines() or [type(error).__name__])[0]
        return WorkerLost(f"lost contact with another worker ({first})")
    return None
