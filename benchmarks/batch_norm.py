"""The training step's speed under three batch-norm implementations, side by side in one process:

- ``ours``: ``wgan_tf.batchnorm`` (the global batch's moments from float32 sums, all-reduced where
  there are several replicas, then TensorFlow's fused kernel in inference mode with them): one
  arithmetic on one replica and on several (issue 25);
- ``fused``: TensorFlow's fused kernel in training mode, its own replica's moments (what one
  replica ran before issue 25; wrong on several replicas, so one replica only here);
- ``keras``: Keras 3's synchronized batch norm (what several replicas ran before issue 25), which
  casts bfloat16 activations to float32 and normalises in several ops.

Each is timed on the train function itself (DCGAN 64x64x3, batch 64, n_critic 5, a batch in memory,
after warm-up), every implementation in turn, ``--rounds`` times, best round kept.

    python benchmarks/batch_norm.py [--precision bfloat16] [--penalty clip|gp] [--rounds 2]
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

from wgan_tf import models  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from profile_step import build  # noqa: E402

OURS = models.BatchNormalization.call


def fused_call(self, inputs, training=None, mask=None):
    """TensorFlow's fused kernel in training mode: this replica's moments only."""
    if not (training and self.trainable):
        return OURS(self, inputs, training=training, mask=mask)
    channels = inputs.shape[-1]
    scale = tf.ones([channels]) if self.gamma is None else tf.convert_to_tensor(self.gamma)
    offset = tf.zeros([channels]) if self.beta is None else tf.convert_to_tensor(self.beta)
    y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
        inputs, scale, offset, epsilon=self.epsilon, data_format="NHWC", is_training=True)
    count = tf.cast(tf.size(inputs) // channels, tf.float32)
    variance = variance * (count - 1.0) / count  # the kernel's is the unbiased one
    for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
        moving.assign(moving * self.momentum + batch * (1.0 - self.momentum))
    return tf.cast(y, self.compute_dtype)


def keras_call(self, inputs, training=None, mask=None):
    return layers.BatchNormalization.call(self, inputs, training=training, mask=mask)


IMPLEMENTATIONS = {"ours": OURS, "fused": fused_call, "keras": keras_call}


def seconds_per_iteration(flags, iterations, warmup):
    _, function, iterator = build(flags)
    for _ in range(warmup):
        function(iterator)
    start = time.perf_counter()
    for _ in range(iterations):
        function(iterator)
    return (time.perf_counter() - start) / iterations


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--precision", default="bfloat16")
    parser.add_argument("--penalty", default="clip")
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()
    flags = ["--dataset", "digits", "--image-size", str(args.image_size), "--channels", "3",
             "--precision", args.precision, "--penalty", args.penalty, "--no-critic-boost"]
    best = {}
    for _ in range(args.rounds):
        for name, call in IMPLEMENTATIONS.items():
            models.BatchNormalization.call = call
            seconds = seconds_per_iteration(flags, args.iterations, args.warmup)
            best[name] = min(best.get(name, float("inf")), seconds)
            print(f"# {name}: {seconds:.3f} s per generator iteration", flush=True)
    models.BatchNormalization.call = OURS
    print(json.dumps({"precision": args.precision, "penalty": args.penalty,
                      "seconds_per_generator_iteration": best,
                      "ours_over_fused": best["fused"] / best["ours"],
                      "ours_over_keras": best["keras"] / best["ours"]}, indent=1))


if __name__ == "__main__":
    main()
