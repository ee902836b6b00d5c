"""The DCGAN step's kernels one layer at a time: convolutions and their filter gradients, batch norm.

What ``wgan_tf.convolution`` and ``wgan_tf.batchnorm`` chose, side by side with what they replace,
on the shapes of the paper's 64x64 DCGAN (batch 64, 4x4 kernels, stride 2):

- per convolution layer: the forward convolution, TensorFlow's filter gradient
  (``Conv2DBackpropFilter``) and the package's (``convolution.filter_gradient``: a forward
  convolution of the input, batch and channels swapped, by the output's gradient), in ms and
  GFLOP/s, and which one the layer uses (``convolution.own_gradient_pays``);
- per batch norm shape: a training-mode forward and backward of ``batchnorm.normalize_batch``
  against the same with the sums' gradient left to autodiff (the package's code before issue 23's
  second pass).

Each kernel is a ``tf.function`` timed alone, best of ``--rounds`` runs of ``--calls`` calls: this
is the kernels' own speed on an idle machine; in the training step two ops often run at once on
two cores, so their self-times there are longer (benchmarks/profile_step.py).

    python benchmarks/layer_kernels.py [--precision bfloat16] [--filters 64] [--batch 64]
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from wgan_tf import batchnorm, convolution  # noqa: E402

AXES = [0, 1, 2]


def best_ms(function, calls, rounds):
    for _ in range(3):
        function()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        times.append((time.perf_counter() - start) / calls * 1e3)
    return min(times)


def conv_layers(image_size, filters):
    """(input size, input channels, output channels) of the critic's stride-2 convolutions; the
    generator's transposed ones have the same filter gradients with input and output swapped."""
    sizes, channels = [], [3] + [filters * 2 ** i for i in range(4)]
    size = image_size
    for i in range(4):
        sizes.append((size, channels[i], channels[i + 1]))
        size //= 2
    return sizes


def time_convolution(size, c_in, c_out, batch, dtype, calls, rounds):
    x = tf.cast(tf.random.normal([batch, size, size, c_in]), dtype)
    w = tf.cast(tf.random.normal([4, 4, c_in, c_out]), dtype)
    dy = tf.cast(tf.random.normal([batch, size // 2, size // 2, c_out]), dtype)
    forward = tf.function(lambda: tf.nn.conv2d(x, w, 2, "SAME"), autograph=False)
    theirs = tf.function(lambda: tf.raw_ops.Conv2DBackpropFilter(
        input=x, filter_sizes=[4, 4, c_in, c_out], out_backprop=dy, strides=[1, 2, 2, 1],
        padding="SAME"), autograph=False)
    ours = tf.function(lambda: convolution.filter_gradient(x, dy, (4, 4), [2, 2], "SAME"),
                       autograph=False)
    reference, result = (tf.cast(f(), tf.float32) for f in (theirs, ours))
    gflop = 2 * batch * (size // 2) ** 2 * 16 * c_in * c_out / 1e9
    ms = {name: best_ms(f, calls, rounds)
          for name, f in (("forward", forward), ("tensorflow_filter_gradient", theirs),
                          ("own_filter_gradient", ours))}
    return {"layer": f"{size}x{size}x{c_in} -> {size // 2}x{size // 2}x{c_out}", "gflop": gflop,
            "ms": ms, "gflops": {k: gflop / v * 1e3 for k, v in ms.items()},
            "uses_own": convolution.own_gradient_pays(dtype, (size // 2) ** 2),
            "relative_difference": float(tf.reduce_max(tf.abs(result - reference))
                                         / tf.reduce_max(tf.abs(reference)))}


def normalize_batch_autodiff(x, scale, offset, epsilon):
    """``batchnorm.normalize_batch`` (one replica) with the sums' gradient left to autodiff."""
    x32 = tf.cast(x, tf.float32)
    count = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
    sums = tf.stack([tf.reduce_sum(x32, AXES), tf.reduce_sum(tf.square(x32), AXES)])
    mean = sums[0] / count
    variance = tf.maximum(sums[1] / count - tf.square(mean), 0.0)
    return batchnorm.normalize(x, scale, offset, mean, variance, epsilon), mean, variance


def time_batch_norm(shape, dtype, calls, rounds):
    x = tf.cast(tf.random.normal(shape) * 2 + 1, dtype)
    upstream = tf.cast(tf.random.normal(shape), dtype)
    scale, offset = tf.random.normal(shape[-1:]), tf.random.normal(shape[-1:])

    def step(normalize_batch):
        @tf.function(autograph=False)
        def run():
            with tf.GradientTape() as tape:
                tape.watch([x, scale, offset])
                y = normalize_batch(x, scale, offset, 1e-5)[0]
                loss = tf.reduce_sum(tf.cast(y * upstream, tf.float32))
            return tape.gradient(loss, [x, scale, offset])
        return run

    ours, autodiff = step(batchnorm.normalize_batch), step(normalize_batch_autodiff)
    difference = max(float(tf.reduce_max(tf.abs(tf.cast(a, tf.float32) - tf.cast(b, tf.float32)))
                           / tf.reduce_max(tf.abs(tf.cast(b, tf.float32))))
                     for a, b in zip(ours(), autodiff()))
    ms = {"one_pass_sums_gradient": best_ms(ours, calls, rounds),
          "autodiff_sums_gradient": best_ms(autodiff, calls, rounds)}
    return {"shape": "x".join(map(str, shape[1:])), "ms_forward_and_backward": ms,
            "relative_difference": difference}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--precision", default="bfloat16", choices=("bfloat16", "float32"))
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", help="also write the result as JSON")
    args = parser.parse_args()
    dtype = tf.as_dtype(args.precision)
    convolutions = [time_convolution(*layer, args.batch, dtype, args.calls, args.rounds)
                    for layer in conv_layers(args.image_size, args.filters)]
    sizes = [args.image_size // 2 ** i for i in range(1, 5)]
    norms = [time_batch_norm([args.batch, s, s, args.filters * args.image_size // (2 * s)], dtype,
                             args.calls, args.rounds) for s in sizes]
    print(f"{args.precision}, batch {args.batch}: ms (GFLOP/s)")
    print(f"{'convolution':30s} {'forward':>14s} {'TF filter grad':>16s} {'own filter grad':>16s}"
          "  the layer uses")
    for c in convolutions:
        cells = [f"{c['ms'][k]:6.1f} ({c['gflops'][k]:4.0f})" for k in
                 ("forward", "tensorflow_filter_gradient", "own_filter_gradient")]
        print(f"{c['layer']:30s} {cells[0]:>14s} {cells[1]:>16s} {cells[2]:>16s}  "
              f"{'own' if c['uses_own'] else 'TensorFlow'}")
    print(f"{'batch norm, forward + backward':30s} {'one-pass':>14s} {'autodiff':>16s}")
    for n in norms:
        ms = n["ms_forward_and_backward"]
        print(f"{n['shape']:30s} {ms['one_pass_sums_gradient']:11.2f} ms "
              f"{ms['autodiff_sums_gradient']:13.2f} ms")
    result = {"precision": args.precision, "batch": args.batch, "convolutions": convolutions,
              "batch_norm": norms}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
