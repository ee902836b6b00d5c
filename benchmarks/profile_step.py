"""Where a training iteration's time goes, by op: TensorFlow's profiler on ``model.train_function``.

Builds the model of a ``wgan-tf train`` setting, warms it up (oneDNN makes its bfloat16 kernels
during the first iterations), traces ``--iterations`` calls of the train function (each one
generator iteration: ``n_critic`` critic updates and one generator update) with
``tf.profiler.experimental``, and sums the ops' self-times (TensorFlow's framework_op_stats) by
part of the step:

- convolutions forward, and their backward (input and filter gradients; a transposed
  convolution's forward is a Conv2DBackpropInput, filed by the name scope it runs in; the
  filter gradients of ``wgan_tf.convolution`` are forward convolutions in a gradient's scope),
  and matrix products (the generator's 1x1 -> 4x4 projection);
- batch and layer normalisation, casts, element-wise and reduction ops, the optimizer's update and
  weight clipping (ops under the optimizer's name scope), random numbers, everything else.

Self-times overlap where TensorFlow runs ops in parallel on the two cores, so the parts add up
to more than the wall-clock time of the iteration; their shares are of that sum.

    python benchmarks/profile_step.py [--precision bfloat16] [--penalty clip|gp]
        [--recipe paper|fast] [--out FILE.json] [--top 25]
"""
import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from tensorflow.python.profiler.internal import _pywrap_profiler_plugin  # noqa: E402

# (part, test on (op type, op name)), first match wins.
PARTS = [
    # Keras 3 names RMSprop's ops "rm_sprop/...".
    ("optimizer and clipping", lambda t, n: any(s in n for s in ("Adam", "RMSprop", "rmsprop",
                                                                 "rm_sprop", "adam",
                                                                 "optimizer"))),
    ("batch norm", lambda t, n: "FusedBatchNorm" in t or "/bn" in n or "cbn" in n
     or "normalize" in n),
    ("layer norm", lambda t, n: "/ln" in n),
    ("conv backward", lambda t, n: "Conv2D" in t and "gradient" in n.lower()),
    ("conv forward", lambda t, n: "Conv2D" in t),
    ("casts", lambda t, n: t == "Cast"),
    ("random numbers", lambda t, n: "Random" in t),
    ("matrix products (the generator's projection of the latent)",
     lambda t, n: "MatMul" in t or "ExtractImagePatches" in t),
]


def setting_flags(args):
    flags = ["--dataset", "digits", "--image-size", str(args.image_size), "--channels", "3",
             "--recipe", args.recipe, "--precision", args.precision, "--no-critic-boost"]
    if args.penalty:
        flags += ["--penalty", args.penalty]
    if args.filters:
        flags += ["--filters", str(args.filters)]
    return flags


def build(flags):
    from wgan_tf import build as build_module
    from wgan_tf import distribute
    from wgan_tf.cli import build_parser
    from wgan_tf.train import config_from_args

    config = config_from_args(build_parser().parse_args(["train", *flags, "--out", "unused"]))
    model = build_module.build_model(config, distribute.make_strategy(1))
    shape = [config.batch_size, config.image_size, config.image_size, config.channels]
    batches = tf.data.Dataset.from_tensors(tf.random.uniform(shape, -1, 1)).repeat()
    model.fit(batches, steps_per_epoch=1, epochs=1, verbose=0)
    function = model.make_train_function()
    iterator = iter(model.distribute_strategy.experimental_distribute_dataset(batches))
    return config, function, iterator


def op_stats(function, iterator, iterations):
    """[(op type, op name, occurrences, total self-time in us)] of ``iterations`` calls."""
    logdir = tempfile.mkdtemp(prefix="wgan-tf-profile-")
    try:
        tf.profiler.experimental.start(logdir)
        for _ in range(iterations):
            function(iterator)
        tf.profiler.experimental.stop()
        path = glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb"))[0]
        data, ok = _pywrap_profiler_plugin.xspace_to_tools_data([path], "framework_op_stats", {})
        if not ok:
            raise SystemExit(f"profile_step.py: the profiler's op statistics failed: {data!r}")
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    table = json.loads(data)[0]
    columns = [c["id"] for c in table["cols"]]
    rows = [dict(zip(columns, [cell.get("v") if isinstance(cell, dict) else cell
                               for cell in row["c"]])) for row in table["rows"]]
    return [(r["type"], r["operation"], int(r["occurrences"]), float(r["total_self_time"]))
            for r in rows if r["host_or_device"] in ("Host", "Device") and r["type"] != "IDLE"]


def by_part(stats, iterations):
    """{part: seconds per iteration} of ``op_stats``' rows over ``iterations`` calls."""
    parts = {}
    for op_type, name, _, self_time in stats:
        part = part_of(op_type, name)
        parts[part] = parts.get(part, 0.0) + self_time / 1e6 / iterations
    return dict(sorted(parts.items(), key=lambda kv: -kv[1]))


def part_of(op_type, name):
    for part, matches in PARTS:
        if matches(op_type, name):
            return part
    return "other"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="paper", help="wgan-tf train --recipe")
    parser.add_argument("--penalty", default=None, help="clip or gp (default: the recipe's)")
    parser.add_argument("--precision", default="bfloat16")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--filters", type=int, default=None)
    parser.add_argument("--iterations", type=int, default=3, help="traced calls")
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--top", type=int, default=25, help="ops listed by self-time")
    parser.add_argument("--out", help="also write the result as JSON")
    args = parser.parse_args()

    config, function, iterator = build(setting_flags(args))
    for _ in range(args.warmup):
        function(iterator)
    start = time.perf_counter()
    for _ in range(args.iterations):
        function(iterator)
    wall = (time.perf_counter() - start) / args.iterations
    stats = op_stats(function, iterator, args.iterations)
    total = sum(s[3] for s in stats)
    parts, types = {}, {}
    for op_type, name, _, self_time in stats:
        part = part_of(op_type, name)
        parts[part] = parts.get(part, 0.0) + self_time
        types[(part, op_type)] = types.get((part, op_type), 0.0) + self_time
    result = {
        "setting": {k: getattr(config, k) for k in ("penalty", "n_critic", "precision", "filters",
                                                    "image_size", "batch_size", "recipe")},
        "seconds_per_iteration": wall,
        "op_seconds_per_iteration": total / 1e6 / args.iterations,
        "parts": {p: {"seconds_per_iteration": t / 1e6 / args.iterations, "share": t / total}
                  for p, t in sorted(parts.items(), key=lambda kv: -kv[1])},
        "op_types": [{"part": part, "type": t, "seconds_per_iteration": v / 1e6 / args.iterations}
                     for (part, t), v in sorted(types.items(), key=lambda kv: -kv[1])],
        "top_ops": [{"type": t, "name": n, "occurrences": o // args.iterations,
                     "seconds_per_iteration": s / 1e6 / args.iterations, "part": part_of(t, n)}
                    for t, n, o, s in sorted(stats, key=lambda r: -r[3])[:args.top]],
    }
    print(f"{config.precision}, {config.penalty}, n_critic {config.n_critic}: "
          f"{wall:.3f} s per iteration (ops' self-times {result['op_seconds_per_iteration']:.3f} s)")
    for part, value in result["parts"].items():
        print(f"  {part:24s} {value['seconds_per_iteration']:7.3f} s  {100 * value['share']:5.1f} %")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print(args.out)
    else:
        json.dump(result["top_ops"], sys.stdout, indent=1)


if __name__ == "__main__":
    main()
