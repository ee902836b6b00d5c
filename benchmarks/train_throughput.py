"""Training throughput of Algorithm 1 against this machine's float32 matmul rate.

Measures generator iterations per second for the paper's setting (DCGAN 64x64x3, batch 64,
n_critic 5, RMSProp, weight clipping; steady state, so without the critic boost), with and without
XLA, on data already in memory so that only the training step is timed. Model FLOPs per generator
iteration are counted from the convolution shapes (multiply-adds x 2; batch norm and activations are
left out, as in MFU figures):

    n_critic * (G_fwd + 3 * D_fwd(real) + 3 * D_fwd(fake)) + G_fwd + D_fwd + D_bwd_input + 2 * G_fwd

i.e. each critic iteration runs the generator forward and the critic forward and backward (weight and
input gradients, ~2x forward) on a real and a fake batch; the generator iteration runs both networks
forward, the critic backward for input gradients only (~1x forward) and the generator backward (~2x).
The matmul rate is the best of several 2048x2048 float32 products timed in the same run, before and
after training; the higher of the two is the denominator.

    python benchmarks/train_throughput.py [--iterations 20] [--devices 1]
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from wgan_tf import distribute, models  # noqa: E402
from wgan_tf.wgan import WGAN  # noqa: E402


def conv_flops(model, batch):
    """2 x multiply-adds of every Conv2D / Conv2DTranspose / Dense layer for one forward pass."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            _, h, w, c_in = layer.input.shape
            total += h * w * c_in * np.prod(layer.kernel_size) * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            total += h * w * c_out * np.prod(layer.kernel_size) * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += layer.kernel.shape[0] * layer.kernel.shape[1]
    return 2 * int(total) * batch


def flops_per_generator_iteration(generator, critic, batch, n_critic):
    g, d = conv_flops(generator, batch), conv_flops(critic, batch)
    critic_iteration = g + 3 * d + 3 * d
    generator_iteration = g + d + d + 2 * g
    return n_critic * critic_iteration + generator_iteration


def matmul_rate(n=2048, repeats=10):
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def throughput(jit, iterations, devices, image_size, batch, n_critic):
    strategy = distribute.make_strategy(devices)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        generator, critic = models.build_pair("dcgan", image_size, 3)
        model = WGAN(generator, critic, n_critic=n_critic, critic_boost=False)
        model.compile(jit_compile=jit)
    images = tf.random.uniform([batch, image_size, image_size, 3], -1, 1)
    dataset = tf.data.Dataset.from_tensors(images).repeat()
    warmup = 3
    model.fit(dataset, steps_per_epoch=warmup, epochs=1, verbose=0, shuffle=False)
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=iterations, epochs=1, verbose=0, shuffle=False)
    elapsed = time.perf_counter() - start
    return iterations / elapsed, flops_per_generator_iteration(generator, critic, batch, n_critic)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-critic", type=int, default=5)
    parser.add_argument("--xla", choices=("both", "on", "off"), default="both")
    args = parser.parse_args()

    before = matmul_rate()
    modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.xla]
    runs = {f"xla_{'on' if jit else 'off'}": throughput(jit, args.iterations, args.devices,
                                                         args.image_size, args.batch_size,
                                                         args.n_critic)
            for jit in modes}
    # The rate is measured before and after the training runs and the higher one is used, so a
    # machine busy with something else during one measurement does not flatter the share.
    rate = max(before, matmul_rate())
    results = {"matmul_gflops": rate / 1e9, "threads": os.cpu_count()}
    for name, (its, flops) in runs.items():
        results[name] = {
            "generator_iterations_per_s": its,
            "model_gflops_per_iteration": flops / 1e9,
            "achieved_gflops": its * flops / 1e9,
            "share_of_matmul_rate": its * flops / rate,
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
