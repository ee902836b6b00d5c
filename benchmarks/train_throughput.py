"""Training throughput of Algorithm 1 against this machine's matmul rate, per precision, with and
without XLA, and against a plain PyTorch implementation of the same step.

Measures generator iterations per second in steady state on data already in memory (no critic
boost), so only the training step is timed:

- ``--arch dcgan``: the paper's setting, DCGAN 64x64x3, batch 64, n_critic 5, weight clipping and
  RMSProp (``--penalty gp``: WGAN-GP's layer-norm critic, Adam and the penalty).
- ``--arch mlp``: the WGAN-GP toy setting (3 hidden layers of 512, latent 2, batch 256, the
  penalty), where the networks are small and per-step overhead matters; it is also timed through
  ``wgan_tf.train.train`` (what ``wgan-tf train`` runs: the data stream, callbacks, logging,
  samples, checkpoints) on ``toy:25gaussians``, with ``--steps-per-execution`` 1 and 10.

Model FLOPs per generator iteration (clipping) are counted from the layer shapes (multiply-adds x
2; normalisation and activations left out, as MFU figures do):

    n_critic * (G_fwd + 3 * D_fwd(real) + 3 * D_fwd(fake)) + G_fwd + D_fwd + D_bwd_input + 2 * G_fwd

The share is taken of the matmul rate *in the same precision* (the best of several 2048x2048
``tf.matmul`` products, timed before and after the runs, the higher used): float32, bfloat16
(this CPU has AVX512-BF16 and AMX), and float16 only where a GPU is present. With the gradient
penalty the double backward adds work this count leaves out, so no share is given for it.

With ``torch`` installed (``pip install -e '.[bench]'``), ``benchmarks/torch_reference.py`` runs
the same step, float32 and bfloat16 autocast (channels_last), each in its own process after ours,
and the ratios are printed. This VM's speed drifts by 10-20 % over tens of seconds, so two
measurements a minute apart compare two machines; ``--turns N`` also times both steps iteration
by iteration in turns (two warmed-up processes, the order alternating: benchmarks/turns.py), the
comparison to quote. ``--against CHECKOUT`` times another commit's package the same way (a
before and after), and with ``--recipe NAME`` the step of ``wgan-tf train --recipe NAME``.

    python benchmarks/train_throughput.py [--arch dcgan|mlp] [--penalty clip|gp]
        [--precision float32,bfloat16] [--xla both|on|off] [--iterations 10] [--no-torch]
        [--rounds 3] [--turns 30 [--against CHECKOUT [--recipe fast]]]
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from wgan_tf import convolution, distribute, models, precision  # noqa: E402
from wgan_tf.config import TOY_BATCH_SIZE, TrainConfig  # noqa: E402
from wgan_tf.wgan import WGAN  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
AFTER_MAX_POSITIONS = convolution.MAX_POSITIONS
_DTYPES = {"float32": tf.float32, "bfloat16": tf.bfloat16, "float16": tf.float16}


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


def matmul_rate(dtype=tf.float32, n=2048, repeats=10):
    a = tf.cast(tf.random.normal([n, n]), dtype)
    b = tf.cast(tf.random.normal([n, n]), dtype)
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y), tf.float32)))
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def build(arch, penalty, precision_name, image_size, batch, n_critic, jit, devices=1, filters=64):
    strategy = distribute.make_strategy(devices)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        with precision.policy(precision_name):
            generator, critic = models.build_pair(
                arch, image_size, 3, 2 if arch == "mlp" else 100, filters,
                critic_normalization="layer" if penalty == "gp" else "batch",
                point_dim=2 if arch == "mlp" else None)
        model = WGAN(generator, critic, n_critic=n_critic, penalty=penalty, critic_boost=False,
                     gp_weight=0.1 if arch == "mlp" else 10.0)
        model.compile(jit_compile=jit, loss_scaling=precision_name == "float16")
    shape = [batch, 2] if arch == "mlp" else [batch, image_size, image_size, 3]
    return model, tf.data.Dataset.from_tensors(tf.random.uniform(shape, -1, 1)).repeat()


def prepared_step(jit, devices, image_size, batch, n_critic, penalty="clip",
                  precision_name="float32", arch="dcgan", filters=64, before=False):
    """(model, train function, its iterator): one call of ``function(iterator)`` is one generator
    iteration, traced, as ``fit`` calls it. ``before``: the step as it was before issue 23 (the
    filter gradient as TensorFlow's op everywhere, the critic called on each batch apart; batch
    norm's gradient is today's)."""
    from wgan_tf import convolution

    convolution.MAX_POSITIONS = 0 if before else AFTER_MAX_POSITIONS
    model, dataset = build(arch, penalty, precision_name, image_size, batch, n_critic, jit,
                           devices, filters)
    if before:
        model.per_sample_critic = False
    model.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    function = model.make_train_function()
    iterator = iter(model.distribute_strategy.experimental_distribute_dataset(dataset))
    return model, function, iterator


def throughput(jit, iterations, devices, image_size, batch, n_critic, penalty="clip",
               precision_name="float32", arch="dcgan", warmup=None, filters=64, before=False,
               parts=False):
    """(generator iterations per second, model FLOP per iteration, the step's time by part or
    None) on a batch in memory, after ``warmup`` iterations (default: as many as are timed).
    Tracing takes the first; oneDNN's bfloat16 kernels are still being made for several more (a
    64x64 bfloat16 step ran at 2.0 s per iteration for iterations 4-8 and 1.2 s from then on),
    so a short warm-up understates bfloat16 by half. The train function is called as ``fit``
    calls it, timed without ``fit``'s own setup (about 0.6 s a call, once per run in
    ``wgan-tf train``), as the PyTorch loop is timed. ``parts``: the ops' self-times by part
    (benchmarks/profile_step.py)."""
    from wgan_tf import convolution

    warmup = max(3, iterations) if warmup is None else warmup
    model, function, iterator = prepared_step(jit, devices, image_size, batch, n_critic, penalty,
                                              precision_name, arch, filters, before)
    for _ in range(warmup):
        function(iterator)
    start = time.perf_counter()
    for _ in range(iterations):
        function(iterator)
    elapsed = time.perf_counter() - start
    split = None
    if parts:
        from profile_step import by_part, op_stats

        split = by_part(op_stats(function, iterator, max(1, iterations // 3)),
                        max(1, iterations // 3))
    convolution.MAX_POSITIONS = AFTER_MAX_POSITIONS
    return (iterations / elapsed,
            flops_per_generator_iteration(model.generator, model.critic, batch, n_critic), split)


class _Timer(keras.callbacks.Callback):
    """Times the generator iterations after the first ``skip`` (tracing) from fit's batches."""

    def __init__(self, skip):
        super().__init__()
        self.skip, self.marks = skip, []

    def on_train_batch_end(self, batch, logs=None):
        self.marks.append((int(self.model.step_counter.numpy()), time.perf_counter()))

    def rate(self):
        marks = [m for m in self.marks if m[0] >= self.skip]
        if len(marks) < 2:
            raise SystemExit(f"train_throughput.py: --cli-steps {self.marks[-1][0]} leaves fewer "
                             f"than two timed calls after the first {self.skip} iterations")
        (first_step, first_time), (last_step, last_time) = marks[0], marks[-1]
        return (last_step - first_step) / (last_time - first_time)


def cli_iterations_per_second(precision_name, steps_per_execution, steps=300, jit="off"):
    """Generator iterations per second of ``wgan-tf train --dataset toy:25gaussians --arch mlp
    --penalty gp`` (its defaults: logging every 10 iterations, a scatter plot every 100), timed
    inside ``wgan_tf.train.train`` after the first 20 iterations (a third of a shorter run)."""
    from wgan_tf.train import train

    config = TrainConfig(dataset="toy:25gaussians", arch="mlp", penalty="gp", steps=steps,
                         precision=precision_name, steps_per_execution=steps_per_execution,
                         jit_compile=jit)
    timer = _Timer(skip=min(20, steps // 3))
    with tempfile.TemporaryDirectory() as run_dir:
        train(config, run_dir, progress=False, extra_callbacks=[timer])
    return timer.rate()


def torch_reference(arch, penalty, image_size, batch, n_critic, iterations,
                    precisions=("float32", "bfloat16")):
    """The PyTorch step's iterations per second per precision (each in its own process, so that
    neither framework's threads wait on the other's), or None without torch."""
    script = os.path.join(HERE, "torch_reference.py")
    results = {}
    for precision_name in precisions:
        out = subprocess.run(
            [sys.executable, script, "--arch", arch, "--penalty", penalty, "--precision",
             precision_name, "--image-size", str(image_size), "--batch-size", str(batch),
             "--n-critic", str(n_critic), "--iterations", str(iterations),
             "--warmup", str(max(3, iterations))],  # the same warm-up as ours
            capture_output=True, text=True, check=True).stdout
        report = json.loads(out[out.index("{"):])
        if not report["available"]:
            return None
        results[precision_name] = next(iter(report["generator_iterations_per_s"].values()))
    return results


def measure_command(key, args, parts=False, turns=False):
    """The command line of one measurement of ours (``key``: PRECISION/xla_on|xla_off[/before])
    in a fresh process."""
    command = [sys.executable, os.path.abspath(__file__), "--measure", key, "--arch", args.arch,
               "--iterations", str(args.iterations), "--devices", str(args.devices),
               "--image-size", str(args.image_size), "--n-critic", str(args.n_critic)]
    for flag, value in (("--penalty", args.penalty), ("--batch-size", args.batch_size)):
        if value:
            command += [flag, str(value)]
    if args.recipe:
        command += ["--recipe", args.recipe]
    if parts:
        command.append("--parts")
    if turns:
        command += ["--turns", "1"]
    return command


def recipe_step(recipe, precision_name, image_size, batch=None, penalty=None):
    """(train function, its iterator, the built config's recipe) of ``wgan-tf train --recipe
    RECIPE``'s step (everything the recipe sets: widths, penalty and its schedule, DiffAugment,
    n_critic, EMA) on a batch in memory, built as the CLI builds it
    (benchmarks/profile_step.py)."""
    from profile_step import build as build_from_flags

    flags = ["--dataset", "digits", "--image-size", str(image_size), "--channels", "3",
             "--recipe", recipe, "--precision", precision_name, "--no-critic-boost"]
    for flag, value in (("--batch-size", batch), ("--penalty", penalty)):
        if value:
            flags += [flag, str(value)]
    config, function, iterator = build_from_flags(flags)
    return function, iterator, config.recipe


def measure_apart(key, args, parts=False):
    """(iterations per second, FLOP per iteration, time by part) of one setting in a fresh
    process, as PyTorch's step is measured: each measurement starts cold alike, and none inherits
    the other's oneDNN kernels or memory."""
    out = subprocess.run(measure_command(key, args, parts), capture_output=True, text=True,
                         check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])  # --measure prints one JSON line last
    return result["its"], result["flops"], result["parts"]


class _Turns:
    """A warmed-up step in a child process that runs one timed iteration per turn."""

    def __init__(self, command, env=None):
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log, text=True, env=env)
        self.timed = self._answer().split(" ", 1)[1]  # "ready WHAT": built and warmed up

    def _answer(self):
        for line in self.process.stdout:
            if line.startswith("TURN "):
                return line[len("TURN "):].strip()
        self.log.seek(0)
        raise SystemExit(f"train_throughput.py: {self.process.args[1]} stopped:\n"
                         + self.log.read()[-3000:])

    def turn(self):
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        return float(self._answer())

    def close(self):
        self.process.stdin.write("stop\n")
        self.process.stdin.close()
        self.process.wait(timeout=120)
        self.log.close()


def paired_turns(precision_name, args, penalty, batch):
    """Ours and PyTorch's step iteration by iteration in turns (two warmed-up processes, the
    order alternating, one running while the other waits): this VM's speed drifts by +-10-20 %
    over tens of seconds, and two neighbouring iterations see the same machine, where two
    measurements a minute apart do not. {"ours": [seconds], "theirs": [seconds]}. With
    ``--against PATH`` the other side is our step again, with the ``wgan_tf`` package of the
    checkout in PATH (an earlier commit: a before and after of a change). Also what each side
    timed ("ours_timed", "theirs_timed": the wgan_tf package's folder, or torch's version)."""
    command = measure_command(f"{precision_name}/xla_off", args, turns=True)
    ours = _Turns(command)
    if args.against:
        theirs = _Turns(command, env=dict(os.environ, PYTHONPATH=os.path.abspath(args.against)))
    else:
        theirs = _Turns([sys.executable, os.path.join(HERE, "torch_reference.py"), "--turns",
                         "--arch", args.arch, "--penalty", penalty, "--precision",
                         precision_name, "--image-size", str(args.image_size), "--batch-size",
                         str(batch), "--n-critic", str(args.n_critic), "--warmup",
                         str(max(3, args.iterations))])
    times = {"ours": [], "theirs": [], "ours_timed": ours.timed, "theirs_timed": theirs.timed}
    try:
        for i in range(args.turns):
            for name, child in (("ours", ours), ("theirs", theirs))[::1 if i % 2 == 0 else -1]:
                times[name].append(child.turn())
    finally:
        ours.close()
        theirs.close()
    return times


def summarize_turns(times):
    ours, theirs = (float(np.median(times[k])) for k in ("ours", "theirs"))
    pairs = [t / o for o, t in zip(times["ours"], times["theirs"])]
    return {"ours_timed": times["ours_timed"], "theirs_timed": times["theirs_timed"],
            "ours_seconds": times["ours"], "theirs_seconds": times["theirs"],
            "ours_iterations_per_s": 1 / ours, "theirs_iterations_per_s": 1 / theirs,
            "ours_over_theirs": theirs / ours,
            "ours_over_theirs_by_turn_quartiles": [float(q) for q in
                                                   np.percentile(pairs, [25, 50, 75])]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", choices=("dcgan", "mlp"), default="dcgan")
    parser.add_argument("--penalty", choices=("clip", "gp"), default=None,
                        help="default: clip for dcgan (the paper's), gp for mlp (the toys')")
    parser.add_argument("--precision", default=None,
                        help="comma-separated: float32, bfloat16, float16 (default: float32 and "
                             "bfloat16, and float16 where a GPU is present)")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1,
                        help="times ours (and PyTorch's) are timed, in turns; medians reported")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"default 64, {TOY_BATCH_SIZE} for mlp")
    parser.add_argument("--n-critic", type=int, default=5)
    parser.add_argument("--xla", choices=("both", "on", "off"), default="both")
    parser.add_argument("--before", action="store_true",
                        help="also time the step as it was before issue 23 (TensorFlow's filter "
                             "gradient everywhere, the critic called on each batch apart)")
    parser.add_argument("--parts", action="store_true",
                        help="the step's time by part (convolutions, batch norm, ...), from "
                             "TensorFlow's profiler (benchmarks/profile_step.py)")
    parser.add_argument("--cli-steps", type=int, default=300,
                        help="mlp: generator iterations of the timed wgan_tf.train runs")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--turns", type=int, default=0,
                        help="also time ours and PyTorch's step iteration by iteration in turns, "
                             "this many each (without XLA): the comparison that the machine's "
                             "drift does not move")
    parser.add_argument("--against", metavar="CHECKOUT",
                        help="with --turns: time this step against the one of the wgan_tf package "
                             "in CHECKOUT (another commit's tree) instead of PyTorch's")
    parser.add_argument("--recipe", metavar="NAME",
                        help="with --turns N --against CHECKOUT --rounds 0: time wgan-tf train "
                             "--recipe NAME's step (its widths, penalty, DiffAugment, ...) in "
                             "both checkouts instead of the paper's DCGAN")
    parser.add_argument("--measure", metavar="PRECISION/XLA[/before]", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.against and not os.path.isdir(os.path.join(args.against, "wgan_tf")):
        parser.error(f"--against {args.against}: no wgan_tf package there")
    if args.recipe and not args.measure and not (args.turns and args.against
                                                 and args.rounds == 0):
        parser.error("--recipe is timed in turns against another checkout only (PyTorch's "
                     "reference has the paper's step alone): add --turns N --against CHECKOUT "
                     "--rounds 0")
    if args.measure:  # one measurement, in this fresh process (see measure_apart, paired_turns)
        precision_name, xla, *old = args.measure.split("/")
        setting = dict(jit=xla == "xla_on", devices=args.devices, image_size=args.image_size,
                       batch=args.batch_size or (TOY_BATCH_SIZE if args.arch == "mlp" else 64),
                       n_critic=args.n_critic,
                       penalty=args.penalty or ("gp" if args.arch == "mlp" else "clip"),
                       precision_name=precision_name, arch=args.arch, before=bool(old))
        if args.turns:  # one side of paired_turns
            import wgan_tf
            from turns import take_turns

            timed = os.path.dirname(wgan_tf.__file__)
            if args.recipe:  # what is timed names the recipe the step was built with
                function, iterator, built = recipe_step(args.recipe, precision_name,
                                                        args.image_size, args.batch_size,
                                                        args.penalty)
                timed += f" --recipe {built}"
            else:
                _, function, iterator = prepared_step(**setting)
            for _ in range(max(3, args.iterations)):  # throughput's warm-up
                function(iterator)
            take_turns(lambda: function(iterator), timed)
            return
        its, flops, split = throughput(iterations=args.iterations, parts=args.parts, **setting)
        print(json.dumps({"its": its, "flops": flops, "parts": split}))
        return

    gpu = bool(tf.config.list_physical_devices("GPU"))
    penalty = args.penalty or ("gp" if args.arch == "mlp" else "clip")
    batch = args.batch_size or (TOY_BATCH_SIZE if args.arch == "mlp" else 64)
    precisions = (args.precision.split(",") if args.precision else
                  ["float32", "bfloat16"] + (["float16"] if gpu else []))
    modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.xla]
    variants = (False, True) if args.before else (False,)
    results = {"arch": args.arch, "penalty": penalty, "batch_size": batch,
               "image_size": None if args.arch == "mlp" else args.image_size,
               "n_critic": args.n_critic, "gpu": gpu, "threads": os.cpu_count(),
               "rounds": args.rounds, "runs": {}}
    if args.recipe:  # the recipe sets the step: arch and penalty above are not what is timed
        results.update(recipe=args.recipe, arch=None, penalty=args.penalty)
    before = {p: matmul_rate(_DTYPES[p]) for p in precisions}
    rates, torch_rates, parts = {}, {}, {}
    for _ in range(args.rounds):
        for precision_name in precisions:
            for jit in modes:
                for old in variants:
                    key = (f"{precision_name}/xla_{'on' if jit else 'off'}"
                           + ("/before" if old else ""))
                    its, flops, split = measure_apart(key, args, parts=args.parts
                                                      and key not in parts)
                    rates.setdefault(key, []).append((its, flops))
                    if split:
                        parts[key] = split
                    print(f"# {key}: {its:.4f} it/s", flush=True)
            if not args.no_torch and precision_name in ("float32", "bfloat16"):
                measured = torch_reference(args.arch, penalty, args.image_size, batch,
                                           args.n_critic, args.iterations, (precision_name,))
                if measured:
                    torch_rates.setdefault(precision_name, []).append(measured[precision_name])
                    print(f"# PyTorch {precision_name}: {measured[precision_name]:.4f} it/s",
                          flush=True)
    matmul = {p: max(before[p], matmul_rate(_DTYPES[p])) for p in precisions}
    results["matmul_gflops"] = {p: rate / 1e9 for p, rate in matmul.items()}
    for key, measured in rates.items():
        its, flops = float(np.median([m[0] for m in measured])), measured[0][1]
        results["runs"][key] = {
            "generator_iterations_per_s": its, "seconds_per_generator_iteration": 1 / its,
            "all_rounds": [m[0] for m in measured], "model_gflops_per_iteration": flops / 1e9,
            "achieved_gflops": its * flops / 1e9,
            "share_of_matmul_rate": (its * flops / matmul[key.split("/")[0]]
                                     if penalty == "clip" else None)}
        if key in parts:
            results["runs"][key]["seconds_by_part"] = parts[key]
    if args.arch == "mlp":
        results["through_train"] = {
            f"{p}/steps_per_execution_{k}": cli_iterations_per_second(p, k, args.cli_steps)
            for p in precisions if p != "float16" for k in (1, 10)}
        print(f"# through wgan_tf.train: {results['through_train']}", flush=True)
    if torch_rates:
        # Per round, ours over PyTorch's measured next to it: the machine's speed drifts by
        # +-10 % between minutes (shared cores), and a ratio of neighbours cancels most of it.
        results["ours_over_torch_by_round"] = {
            p: [ours[0] / theirs for ours, theirs in zip(rates[f"{p}/xla_off"], v)]
            for p, v in torch_rates.items() if f"{p}/xla_off" in rates}
        results["torch"] = {p: float(np.median(v)) for p, v in torch_rates.items()}
        results["torch_all_rounds"] = torch_rates
        ours = {p: max(run["generator_iterations_per_s"] for k, run in results["runs"].items()
                       if k.startswith(p + "/") and not k.endswith("/before"))
                for p in results["torch"]}
        results["ours_over_torch"] = {p: ours[p] / results["torch"][p] for p in ours}
        if args.before:
            results["before_over_torch"] = {
                p: max(run["generator_iterations_per_s"] for k, run in results["runs"].items()
                       if k.startswith(p + "/") and k.endswith("/before")) / results["torch"][p]
                for p in results["torch"]}
        if "through_train" in results:
            results["train_over_torch_float32"] = {
                k: v / results["torch"]["float32"] for k, v in results["through_train"].items()}
    if args.turns and (args.against or not args.no_torch
                       and importlib.util.find_spec("torch") is not None):
        results["turns"] = {"against": args.against or "PyTorch"}
        for precision_name in precisions:
            if precision_name in ("float32", "bfloat16"):
                turns = summarize_turns(paired_turns(precision_name, args, penalty, batch))
                results["turns"][precision_name] = turns
                other = args.against or "PyTorch"
                print(f"# in turns, {precision_name}: ours {turns['ours_iterations_per_s']:.4f}, "
                      f"{other} {turns['theirs_iterations_per_s']:.4f} it/s (medians), ours / "
                      f"{other} {turns['ours_over_theirs']:.3f}", flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
