"""Request batching (wgan_tf/serving/batching.py) by itself: TF Serving's rules for the
parameters, merging and splitting, padding, the queue's bound, and signatures of any shape.
The batcher inside `wgan-tf serve` is tested in test_serving_load.py."""
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from wgan_tf.errors import ConfigError
from wgan_tf.serving import config_files
from wgan_tf.serving.batching import Batcher, BatchingOptions, Refused, batchable
from wgan_tf.serving.metrics import Metrics
from wgan_tf.serving.config_protos import BatchingParameters
from wgan_tf.serving.servable import Signature

ROOT = Path(__file__).resolve().parents[1]


def options(text):
    return BatchingOptions.from_proto(text_format.Parse(
        text, BatchingParameters()))


def test_the_project_config_parses_with_tf_servings_proto():
    params = config_files.batching_parameters(ROOT / "serving" / "batching.config")
    parsed = BatchingOptions.from_proto(params)
    assert parsed.max_batch_size == 1024  # the Python server's default --max-batch
    assert parsed.enable_large_batch_splitting
    assert parsed.max_execution_batch_size <= parsed.max_batch_size
    # A request of max_batch_size samples is split into batches that must all fit the queue.
    assert parsed.max_enqueued_batches * parsed.max_execution_batch_size >= 1024


def test_defaults_are_tf_servings():
    parsed = options("")
    assert (parsed.max_batch_size, parsed.batch_timeout_micros, parsed.max_enqueued_batches,
            parsed.enable_large_batch_splitting) == (1000, 0, 10, False)
    assert parsed.max_execution_batch_size == 1000


@pytest.mark.parametrize("text,problem", [
    ("max_batch_size { value: 0 }", "max_batch_size must be at least 1"),
    ("num_batch_threads { value: 0 }", "num_batch_threads must be at least 1"),
    ("batch_timeout_micros { value: -1 }", "must not be negative"),
    ("max_batch_size { value: 8 } enable_large_batch_splitting { value: true } "
     "max_execution_batch_size { value: 16 }", "must not exceed max_batch_size"),
    ("max_batch_size { value: 8 } allowed_batch_sizes: 4 allowed_batch_sizes: 2 "
     "allowed_batch_sizes: 8", "monotonically increasing"),
    ("max_batch_size { value: 8 } allowed_batch_sizes: 4", "must equal max_batch_size"),
    ("max_batch_size { value: 64 } enable_large_batch_splitting { value: true } "
     "max_execution_batch_size { value: 16 } allowed_batch_sizes: 8",
     "must equal max_execution_batch_size"),
    ("pad_variable_length_inputs: true", "not supported"),
])
def test_parameters_tf_serving_refuses_are_refused(text, problem):
    with pytest.raises(ConfigError, match=problem):
        options(text)


def test_a_file_that_is_not_batching_parameters_is_one_line(tmp_path):
    bad = tmp_path / "batching.config"
    bad.write_text("max_batch_size: 4\n")  # a wrapper field written as a plain number
    with pytest.raises(ConfigError, match="is not a text-format tensorflow.serving."
                                          "BatchingParameters") as raised:
        config_files.batching_parameters(bad)
    assert "\n" not in str(raised.value)


def _spec(shape, dtype=tf.int64):
    return tf.TensorSpec(shape, dtype)


@pytest.mark.parametrize("inputs,outputs,expected", [
    ({"seeds": [None]}, {"images": [None, 4, 4, 3], "png_bytes": [None]}, True),
    # interpolate, truncation, conditional models: several inputs, all batch-aligned
    ({"seed_a": [None], "seed_b": [None], "t": [None]}, {"images": [None, 4, 4, 3]}, True),
    ({"seeds": [None], "labels": [None]}, {"images": [None, 4, 4, 3]}, True),
    ({"labels": [None]}, {"names": [None]}, True),
    ({"seeds": [None], "scale": []}, {"images": [None, 4, 4, 3]}, False),  # a scalar input
    ({"seeds": [3]}, {"images": [3, 4, 4, 3]}, False),  # a fixed batch
    ({"seeds": [None]}, {"mean": [4, 4, 3]}, False),  # an output without the batch
    ({"seeds": [None]}, {"images": None}, False),  # unknown rank
])
def test_batchable_signatures(inputs, outputs, expected):
    def specs(shapes):
        return {k: _spec(tf.TensorShape(v)) for k, v in shapes.items()}
    assert batchable(Signature(specs(inputs), specs(outputs))) is expected


class _Recorder:
    """A signature function that records the batches it runs: each output row is its inputs'
    row, so every task can be checked to get exactly its own rows back."""

    def __init__(self, delay=0.0):
        self.batches, self.delay = [], delay

    def __call__(self, arrays):
        self.batches.append({k: v.copy() for k, v in arrays.items()})
        time.sleep(self.delay)
        total = sum(v.astype(np.int64) for v in arrays.values())
        return {"sum": total, "label": np.array([b"%d" % x for x in total], dtype=object)}


def _concurrently(calls):
    results, threads = [None] * len(calls), []
    for i, call in enumerate(calls):
        def run(i=i, call=call):
            try:
                results[i] = call()
            except Exception as e:  # returned, checked by the test
                results[i] = e
        threads.append(threading.Thread(target=run))
        threads[-1].start()
    for thread in threads:
        thread.join()
    return results


def test_requests_merge_and_each_gets_its_own_rows_in_order():
    batcher = Batcher(options("max_batch_size { value: 16 } batch_timeout_micros "
                              "{ value: 300000 } num_batch_threads { value: 1 }"), Metrics())
    run = _Recorder()
    tasks = [{"seed_a": np.arange(k * 10, k * 10 + k + 1), "t": np.full(k + 1, 100 * k)}
             for k in range(4)]  # 1 + 2 + 3 + 4 = 10 rows, several inputs
    try:
        results = _concurrently([lambda t=t: batcher.run("key", run, t) for t in tasks])
    finally:
        batcher.stop()
    assert len(run.batches) == 1 and len(run.batches[0]["t"]) == 10  # one execution
    for task, result in zip(tasks, results):
        np.testing.assert_array_equal(result["sum"], task["seed_a"] + task["t"])
        assert list(result["label"]) == [b"%d" % x for x in task["seed_a"] + task["t"]]


def test_padding_repeats_the_last_tasks_first_row_and_is_never_returned():
    batcher = Batcher(options("max_batch_size { value: 8 } allowed_batch_sizes: 4 "
                              "allowed_batch_sizes: 8 num_batch_threads { value: 1 }"))
    run = _Recorder()
    try:
        result = batcher.run("key", run, {"seeds": np.array([7, 9], np.int64)})
        assert len(batcher.run("key", run, {"seeds": np.arange(5)})["sum"]) == 5
    finally:
        batcher.stop()
    assert list(run.batches[0]["seeds"]) == [7, 9, 7, 7]  # batching_session.cc's padding
    assert len(run.batches[1]["seeds"]) == 8
    np.testing.assert_array_equal(result["sum"], [7, 9])


def test_large_requests_are_split_across_batches_and_joined_again():
    batcher = Batcher(options("max_batch_size { value: 64 } enable_large_batch_splitting "
                              "{ value: true } max_execution_batch_size { value: 4 } "
                              "max_enqueued_batches { value: 16 } num_batch_threads { value: 2 }"))
    run = _Recorder()
    try:
        result = batcher.run("key", run, {"seeds": np.arange(11)})
    finally:
        batcher.stop()
    assert sorted(len(b["seeds"]) for b in run.batches) == [3, 4, 4]
    np.testing.assert_array_equal(result["sum"], np.arange(11))


def test_a_full_queue_refuses_at_once_and_the_queued_work_still_runs():
    batcher = Batcher(options("max_batch_size { value: 4 } batch_timeout_micros { value: 500000 }"
                              " max_enqueued_batches { value: 1 } num_batch_threads "
                              "{ value: 1 }"))
    run = _Recorder()
    try:
        first = threading.Thread(target=lambda: results.append(
            batcher.run("key", run, {"seeds": np.array([1])})))
        results = []
        first.start()
        time.sleep(0.1)  # the first task waits in the one batch the queue may hold
        started = time.monotonic()
        with pytest.raises(Refused) as raised:  # 1 + 4 rows need a second batch
            batcher.run("key", run, {"seeds": np.arange(4)})
        assert raised.value.code == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - started < 0.2
        with pytest.raises(Refused, match="larger than maximum input batch size 4") as raised:
            batcher.run("key", run, {"seeds": np.arange(5)})
        assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
        other = batcher.run("other key", run, {"seeds": np.arange(4)})  # its own queue
        first.join()
    finally:
        batcher.stop()
    assert list(results[0]["sum"]) == [1] and list(other["sum"]) == [0, 1, 2, 3]


def test_an_error_reaches_every_task_of_its_batch():
    batcher = Batcher(options("batch_timeout_micros { value: 200000 } num_batch_threads "
                              "{ value: 1 }"))

    def broken(arrays):
        raise ValueError("the model failed")
    try:
        results = _concurrently([lambda: batcher.run("key", broken, {"x": np.arange(2)})] * 3)
        ok = batcher.run("key", _Recorder(), {"x": np.arange(2)})
    finally:
        batcher.stop()
    assert all(isinstance(r, ValueError) for r in results)
    assert list(ok["sum"]) == [0, 1]
