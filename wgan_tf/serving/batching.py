"""Server-side request batching with TF Serving's semantics (its ``SharedBatchScheduler`` and
``BatchingSession``), configured by the same ``BatchingParameters`` text proto.

Concurrent requests ("tasks") with the same key (model, version, signature, and the shapes of
their inputs past dimension 0) join one queue of batches. A batch holds at most
``max_execution_batch_size`` rows (``max_batch_size`` without large-batch splitting); it is
closed when full or when a newer batch opens behind it, and runs when closed or once its first
task has waited ``batch_timeout_micros``. ``num_batch_threads`` threads, shared by every queue,
run the batches: the inputs of its tasks concatenated along dimension 0, padded up to the next of
``allowed_batch_sizes`` with copies of the last task's first row (as ``batching_session.cc``
pads), one call of the signature, then the outputs cut back into each task's own rows, in order;
padded rows are dropped. With ``enable_large_batch_splitting`` a task larger than the room left
in the open batch is split across batches, and its pieces joined again. A queue holds at most
``max_enqueued_batches`` batches (a batch being run has left it): a task that does not fit is
refused at once with UNAVAILABLE, so an overload is answered now rather than late.

Nothing here knows a signature: any signature whose inputs and outputs all have the batch in
dimension 0 can be batched (``batchable``); the others run as they come.
"""
import collections
import dataclasses
import os
import threading
import time

import grpc
import numpy as np

from wgan_tf.errors import ConfigError


class Refused(Exception):
    """A task the batcher will not run; ``code`` is the gRPC status to answer with."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """``BatchingParameters`` with TF Serving's defaults for the fields a file leaves out
    (``SharedBatchScheduler::QueueOptions``; batch threads: one per CPU)."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    thread_pool_name: str = "batch_threads"
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int = 1000
    allowed_batch_sizes: tuple = ()

    @classmethod
    def from_proto(cls, params):
        """From a ``BatchingParameters``; refuses what tensorflow_model_server refuses."""
        values = {}
        for field in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
                      "num_batch_threads", "thread_pool_name", "enable_large_batch_splitting",
                      "max_execution_batch_size"):
            if params.HasField(field):
                values[field] = getattr(params, field).value
        if params.pad_variable_length_inputs:
            raise ConfigError("batching parameters: pad_variable_length_inputs is not supported "
                              "by wgan-tf serve (requests of other shapes are batched apart)")
        options = cls(**values, allowed_batch_sizes=tuple(params.allowed_batch_sizes))
        if not options.enable_large_batch_splitting:  # one execution takes a whole task
            options = dataclasses.replace(options, max_execution_batch_size=options.max_batch_size)
        options.check()
        return options

    def check(self):
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads",
                     "max_execution_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"batching parameters: {name} must be at least 1, got "
                                  f"{getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ConfigError("batching parameters: batch_timeout_micros must not be negative")
        if self.max_execution_batch_size > self.max_batch_size:
            raise ConfigError("batching parameters: max_execution_batch_size "
                              f"({self.max_execution_batch_size}) must not exceed max_batch_size "
                              f"({self.max_batch_size})")
        sizes = self.allowed_batch_sizes
        if sizes:  # batching_session.cc's rules
            if any(b <= a for a, b in zip(sizes, sizes[1:])) or sizes[0] < 1:
                raise ConfigError("batching parameters: allowed_batch_sizes entries must be "
                                  f"positive and monotonically increasing, got {list(sizes)}")
            last = ("max_execution_batch_size" if self.enable_large_batch_splitting
                    else "max_batch_size")
            if sizes[-1] != getattr(self, last):
                raise ConfigError(f"batching parameters: the last entry of allowed_batch_sizes "
                                  f"({sizes[-1]}) must equal {last} ({getattr(self, last)})")

    def padded_size(self, size):
        """The batch size ``size`` rows run as: the next allowed size, or itself."""
        return next((s for s in self.allowed_batch_sizes if s >= size), size)


def batchable(signature):
    """Whether every input and output of ``signature`` (``servable.Signature``) is a batch of
    rows along dimension 0 (rank known, at least 1, dimension 0 of unknown size)."""
    specs = [*signature.inputs.values(), *signature.outputs.values()]
    return bool(signature.inputs) and all(
        spec.shape.rank and spec.shape[0] is None for spec in specs)


class _Task:
    """One request: its input arrays, and its outputs once every piece has run."""

    def __init__(self, inputs, size):
        self.inputs, self.size = inputs, size
        self.enqueued = time.monotonic()
        self.pieces_left = 0
        self.outputs = []  # (start row, {name: array}) of each piece that ran
        self.error = None
        self.done = threading.Event()

    def finish_piece(self, start, outputs=None, error=None):
        if error is not None and self.error is None:
            self.error = error
        if outputs is not None:
            self.outputs.append((start, outputs))
        self.pieces_left -= 1  # under the batcher's lock
        if self.pieces_left == 0:
            self.done.set()

    def result(self):
        self.done.wait()
        if self.error is not None:
            raise self.error
        self.outputs.sort(key=lambda piece: piece[0])
        if len(self.outputs) == 1:
            return self.outputs[0][1]
        return {key: np.concatenate([piece[key] for _, piece in self.outputs])
                for key in self.outputs[0][1]}


class _Batch:
    def __init__(self):
        self.pieces = []  # (task, first row, end row) of the task
        self.size = 0
        self.created = time.monotonic()


class _Queue:
    def __init__(self, run):
        self.run = run
        self.batches = collections.deque()  # the last one is open


class Batcher:
    """Merges concurrent tasks of the same key into batches and runs them on its threads.

    ``run(key, run_fn, inputs)`` blocks until the task's outputs are back: ``inputs`` is
    ``{name: array}`` with the batch in dimension 0, ``run_fn`` maps such a dict (the merged
    batch) to the output dict. ``metrics`` (``metrics.Metrics``) records queueing and batch sizes.
    """

    def __init__(self, options, metrics=None):
        self.options, self.metrics = options, metrics
        self._queues = {}
        self._lock = threading.Condition()
        self._stopped = False
        self._threads = [threading.Thread(target=self._work, name=f"{options.thread_pool_name}-{i}",
                                          daemon=True) for i in range(options.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def run(self, key, run_fn, inputs):
        size = len(next(iter(inputs.values())))
        options = self.options
        if size > options.max_batch_size:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, f"Task size {size} is larger than "
                          f"maximum input batch size {options.max_batch_size}")
        task = _Task(inputs, size)
        if self.metrics is not None:
            self.metrics.input_batch_size.observe(size)
        if size == 0:  # nothing to merge; the signature answers an empty batch itself
            return run_fn(inputs)
        with self._lock:
            if self._stopped:
                raise Refused(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue(run_fn)
            self._enqueue(queue, task)
            self._lock.notify_all()
        return task.result()

    def _enqueue(self, queue, task):
        """Put ``task`` (in pieces where splitting is on) into ``queue``'s batches, or refuse it
        whole when the queue has no room: TF Serving's ``Queue::Schedule``."""
        options, batches = self.options, queue.batches
        limit = options.max_execution_batch_size
        room_in_open = limit - batches[-1].size if batches else 0
        if options.enable_large_batch_splitting:
            free_rows = room_in_open + (options.max_enqueued_batches - len(batches)) * limit
            fits = task.size <= free_rows
        else:
            fits = task.size <= room_in_open or len(batches) < options.max_enqueued_batches
        if not fits:
            raise Refused(grpc.StatusCode.UNAVAILABLE, "The batch scheduling queue to which this "
                          "task was submitted is full")
        start = 0
        while start < task.size:
            if not batches or batches[-1].size == limit or (
                    not options.enable_large_batch_splitting
                    and batches[-1].size + task.size > limit):
                batches.append(_Batch())
            batch = batches[-1]
            end = min(task.size, start + limit - batch.size)
            batch.pieces.append((task, start, end))
            batch.size += end - start
            task.pieces_left += 1
            start = end

    def _next_batch(self):
        """The oldest batch that may run now (under the lock), or (None, seconds to wait)."""
        timeout = self.options.batch_timeout_micros / 1e6
        limit = self.options.max_execution_batch_size
        now, best, wait = time.monotonic(), None, None
        for key, queue in self._queues.items():
            if not queue.batches:
                continue
            batch = queue.batches[0]
            ready = (len(queue.batches) > 1 or batch.size == limit
                     or now - batch.created >= timeout)
            if ready and (best is None or batch.created < best[1].created):
                best = (key, batch)
            elif not ready:
                left = batch.created + timeout - now
                wait = left if wait is None else min(wait, left)
        if best is None:
            return None, wait
        key, batch = best
        queue = self._queues[key]
        queue.batches.popleft()
        if not queue.batches:
            del self._queues[key]  # versions come and go: no empty queue outlives its traffic
        return (queue.run, batch), None

    def _work(self):
        while True:
            with self._lock:
                while True:
                    if self._stopped:
                        return
                    ready, wait = self._next_batch()
                    if ready is not None:
                        break
                    self._lock.wait(wait)
            self._execute(*ready)

    def _execute(self, run_fn, batch):
        started = time.monotonic()
        size = batch.size
        padded = self.options.padded_size(size)
        try:
            merged = {}
            for name in batch.pieces[0][0].inputs:
                parts = [task.inputs[name][a:b] for task, a, b in batch.pieces]
                if padded > size:  # TF Serving pads with the last task's first row
                    parts.append(np.repeat(parts[-1][:1], padded - size, axis=0))
                merged[name] = parts[0] if len(parts) == 1 else np.concatenate(parts)
            outputs = run_fn(merged)
            wrong = [k for k, v in outputs.items() if len(v) != padded]
            if wrong:
                raise Refused(grpc.StatusCode.INTERNAL, f"outputs {wrong} of a batch of {padded} "
                              "do not have the batch in dimension 0")
        except Exception as e:  # every task of the batch gets the error
            with self._lock:
                for task, a, _ in batch.pieces:
                    task.finish_piece(a, error=e)
            return
        finally:
            self._record(batch, started, size, padded)
        row = 0
        with self._lock:
            for task, a, b in batch.pieces:
                task.finish_piece(a, {k: v[row:row + b - a] for k, v in outputs.items()})
                row += b - a

    def _record(self, batch, started, size, padded):
        metrics = self.metrics
        if metrics is None:
            return
        for task, _, _ in batch.pieces:
            metrics.queuing_latency.labels(self.options.thread_pool_name).observe(
                (started - task.enqueued) * 1e6)
        metrics.wrapped_run_count.inc()
        metrics.processed_batch_size.observe(padded)
        metrics.padding_size.labels(str(padded)).observe(padded - size)

    def stop(self):
        """Refuse new tasks; tasks still queued are answered UNAVAILABLE; threads end."""
        with self._lock:
            self._stopped = True
            for queue in self._queues.values():
                for batch in queue.batches:
                    for task, a, _ in batch.pieces:
                        task.finish_piece(a, error=Refused(grpc.StatusCode.UNAVAILABLE,
                                                           "the server is shutting down"))
            self._queues.clear()
            self._lock.notify_all()
        for thread in self._threads:
            thread.join()
