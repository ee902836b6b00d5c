"""Colour photographs: WGAN with clipping, WGAN-GP, the GAN baseline, generator EMA and DiffAugment
on ../shared/data/flowers (3,887 photographs, the local stand-in for LSUN bedrooms), measured as
the WGAN-GP paper's Figure 3: quality against generator iterations and against wall-clock time.

    python experiments/photos.py train [--steps N] [--only NAME ...]   # train, or resume, the runs
    python experiments/photos.py speed                                 # seconds per iteration
    python experiments/photos.py report                                # JSON and figures
    python experiments/photos.py figures     # the committed colour models' figures only
    python experiments/photos.py trajectory --only flowers64   # its snapshots, EMA and raw
    python experiments/photos.py all

The runs (``RUNS``: one ``wgan-tf train`` command each, in a fresh process, so a rerun resumes
from the last checkpoint) take turns in chunks of ``CHUNK`` generator iterations, so that all of
them have come equally far whenever the budget ends. Every run keeps a generator EMA (decay 0.999),
which does not change its training: the raw generator is the method's own result, the EMA the
"+ EMA" variant of the same run. Quality is measured every ``EVAL_EVERY`` iterations by
``--eval-every`` (``wgan_tf.quality``): the Fréchet distance and KID in the features of the
flowers' own classifier (not comparable with published FIDs), on 2,000 samples.

``speed`` times each setting's generator iteration on a batch in memory (the data pipeline is
measured by benchmarks/input_pipeline.py); the wall-clock axis is iterations times that time, the
critic boost of the clipped WGAN included, so it does not depend on what else the machine was
doing during the long runs. ``report`` writes docs/results/photos.json,
docs/figures/photos-curves.png (quality against iterations and against time) and
docs/figures/photos-samples.png (the runs' sample grids side by side at the same iterations) and,
where the committed colour model exists, docs/figures/flowers-model.png (its first 64 seeds).

After each chunk ``train`` keeps the run's networks as they are then, a *snapshot*
(``RUN/snapshots/ITERATION/``: config.json, generator.keras, generator_ema.keras, a directory
``wgan-tf evaluate`` reads as a run), and ``trajectory`` measures every snapshot's EMA and raw
generator (``wgan-tf evaluate --num 2000 [--generator raw]``) into
docs/results/photos-trajectory.json: how a long run's two generators move between checkpoints.
"""
import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                    "flowers")
RUNS = "runs/photos"
MODEL = "saved_models/flowers/1"  # the committed colour model (make saved-model-flowers)
TWIN = "saved_models/flowers-unconditional/1"  # its unconditional twin (flowers64-unconditional)
OUT = "docs"
CHUNK = 500
EVAL_EVERY = 250
EMA = 0.999
COMMON = ["--image-size", "32", "--channels", "3", "--batch-size", "64", "--seed", "0",
          "--ema", str(EMA), "--eval-every", str(EVAL_EVERY), "--eval-num", "2000",
          "--log-every", "50", "--sample-every", "250", "--checkpoint-every", "250"]
# name -> (label, flags). The paper's models and defaults; 32x32 for the comparison.
SETTINGS = {
    "wgan-clip": ("WGAN (clipping)", ["--penalty", "clip"]),
    "wgan-gp": ("WGAN-GP", ["--penalty", "gp"]),
    "gan": ("GAN (-log D)", ["--model", "gan"]),
    "wgan-gp-augment": ("WGAN-GP + DiffAugment",
                        ["--penalty", "gp", "--augment", "color,translation,cutout"]),
    # The WGAN-GP paper's conditional model on the flowers' five classes (docs/RESULTS.md,
    # "Conditional generation"): WGAN-GP's settings plus --conditional.
    "wgan-gp-conditional": ("WGAN-GP, conditional", ["--penalty", "gp", "--conditional"]),
}
# The committed colour model (Makefile: saved-model-flowers): the fast recipe (--recipe fast, the
# best WGAN recipe of experiments/recipes.py: one critic step, lazy penalty, two time-scale Adam,
# DiffAugment, a DCGAN of 32 base filters in bfloat16) with the projection critic, at 64x64.
# Measured after training by experiments/served.py, not during it (no --eval-every).
SETTINGS_64 = {
    "flowers64": ("fast recipe, projection-conditional, 64x64",
                  ["--recipe", "fast", "--image-size", "64", "--conditional",
                   "--conditioning", "projection", "--eval-every", "0", "--sample-every", "1000",
                   "--checkpoint-every", "1000"]),
    # Its unconditional twin, committed beside it (saved_models/flowers-unconditional).
    "flowers64-unconditional": ("fast recipe, unconditional, 64x64",
                                ["--recipe", "fast", "--image-size", "64", "--eval-every", "0",
                                 "--sample-every", "1000", "--checkpoint-every", "1000"]),
}
STEPS = {"flowers64": 20000, "flowers64-unconditional": 5000}
# Iterations per fresh process: small for the comparison (all runs come equally far whenever
# the budget ends), large for the one long run (each start costs tracing and data loading).
CHUNKS = {"flowers64": 2500, "flowers64-unconditional": 2500}
DEFAULT_STEPS = 1000
# --smoke (the docs test): every command end to end in seconds, on the same photographs.
SMOKE = ["--image-size", "16", "--filters", "8", "--batch-size", "8", "--n-critic", "2",
         "--eval-every", "2", "--eval-num", "32", "--log-every", "1", "--sample-every", "2",
         "--checkpoint-every", "2", "--precision", "float32"]


def flags(name, data=DATA, smoke=False):
    label, own = {**SETTINGS, **SETTINGS_64}[name]
    # Later flags win in argparse: the 64x64 settings override COMMON's size, SMOKE both.
    return ["--dataset", f"folder:{os.path.normpath(data)}", *COMMON, *own,
            *(SMOKE if smoke else [])]


def train(names, steps, runs, data=DATA, quiet=True, smoke=False):
    """Trains ``names`` in turns of CHUNK iterations up to ``steps`` each (resuming)."""
    done = {name: 0 for name in names}
    while any(done[name] < steps.get(name, DEFAULT_STEPS) for name in names):
        for name in names:
            target = min(done[name] + CHUNKS.get(name, CHUNK), steps.get(name, DEFAULT_STEPS))
            if done[name] >= target:
                continue
            # Every photo decoded once, into the runs' own cache (the same pixels as decoding
            # each batch: only faster).
            command = [_wgan_tf(), "train", *flags(name, data, smoke), "--steps", str(target),
                       "--out", os.path.join(runs, name),
                       "--data-cache", os.path.join(runs, "data-cache")] + \
                (["--quiet"] if quiet else [])
            print(" ".join(command), flush=True)
            subprocess.run(command, check=True)
            snapshot(os.path.join(runs, name), target)
            done[name] = target


SNAPSHOT_FILES = ("config.json", "generator.keras", "generator_ema.keras")


def snapshot(run_dir, iteration):
    """Copies the networks of ``run_dir`` (as its last save left them, at ``iteration``) into
    ``run_dir/snapshots/ITERATION/`` (what ``trajectory`` measures)."""
    import shutil

    folder = os.path.join(run_dir, "snapshots", f"{iteration:06d}")
    os.makedirs(folder, exist_ok=True)
    for name in SNAPSHOT_FILES:
        if os.path.exists(os.path.join(run_dir, name)):
            shutil.copy2(os.path.join(run_dir, name), os.path.join(folder, name))


def trajectory(names, runs, out, num=2000):
    """Classifier FD and KID of the EMA and the raw generator of every snapshot of ``names``
    (``wgan-tf evaluate``), into OUT/results/photos-trajectory.json."""
    path = os.path.join(out, "results", "photos-trajectory.json")
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    found = [name for name in names if os.path.isdir(os.path.join(runs, name, "snapshots"))]
    if not found:
        raise SystemExit(f"no run of {', '.join(names)} in {runs} has snapshots: train it with "
                         "this script first")
    for name in found:
        folder = os.path.join(runs, name, "snapshots")
        rows = {}
        for iteration in sorted(os.listdir(folder)):
            for generator, network in (("ema", "generator_ema"), ("raw", "generator")):
                if not os.path.exists(os.path.join(folder, iteration, f"{network}.keras")):
                    continue
                measured = os.path.join(folder, iteration, f"evaluate-{generator}.json")
                subprocess.run([_wgan_tf(), "evaluate", os.path.join(folder, iteration),
                                "--num", str(num), "--generator", generator,
                                "--out", measured], check=True)
                with open(measured) as f:
                    rows.setdefault(str(int(iteration)), {})[generator] = json.load(f)
        results[name] = rows
        for iteration, row in rows.items():
            print(name, iteration, {g: round(m["classifier_fd"], 1) for g, m in row.items()})
    _write(path, results)


def _wgan_tf():
    return os.path.join(os.path.dirname(sys.executable), "wgan-tf")


def seconds_per_iteration(name, iterations=5, data=DATA, smoke=False):
    """(seconds per generator iteration in steady state without the critic boost, seconds per
    critic-only iteration) of a setting, on a batch in memory, after warm-up."""
    return seconds_per_iteration_of(flags(name, data, smoke), iterations)


def seconds_per_iteration_of(train_flags, iterations=5):
    """``seconds_per_iteration`` of the ``wgan-tf train`` flags ``train_flags``."""
    import tensorflow as tf

    from wgan_tf import build, distribute
    from wgan_tf.cli import build_parser
    from wgan_tf.train import config_from_args

    args = build_parser().parse_args(["train", *train_flags, "--out", "unused",
                                      "--no-critic-boost"])
    config = config_from_args(args)
    if config.conditional:
        from wgan_tf.data import class_names

        config.class_names = class_names(config.dataset)
    model = build.build_model(config, distribute.make_strategy(1))
    shape = [config.batch_size, config.image_size, config.image_size, config.channels]
    images = tf.random.uniform(shape, -1, 1)
    element = (images, tf.zeros([config.batch_size], tf.int32)) if config.conditional else images
    batches = tf.data.Dataset.from_tensors(element).repeat()
    # The train function itself, called as fit calls it: fit's own setup (about 0.6 s per call,
    # once per run) is not part of an iteration. Warm-up as long as the timing: oneDNN makes
    # bfloat16 kernels for several iterations after tracing (benchmarks/train_throughput.py).
    model.fit(batches, steps_per_epoch=1, epochs=1, verbose=0)
    train_function = model.make_train_function()
    iterator = iter(model.distribute_strategy.experimental_distribute_dataset(batches))
    for _ in range(max(2, iterations)):
        train_function(iterator)
    start = time.perf_counter()
    for _ in range(iterations):
        train_function(iterator)
    step = (time.perf_counter() - start) / iterations
    real = element
    noise = model.critic_noise(config.batch_size, model.critic_iterations.value)
    critic_step = tf.function(lambda: model.distributed(model.critic_step)(real, noise))
    critic_step()
    start = time.perf_counter()
    for _ in range(iterations):
        critic_step()
    return step, (time.perf_counter() - start) / iterations


def speed(names, out, smoke=False):
    results = {}
    for name in names:
        step, critic = seconds_per_iteration(name, smoke=smoke)
        results[name] = {"seconds_per_generator_iteration": step,
                         "seconds_per_critic_iteration": critic}
        print(name, results[name], flush=True)
    _write(os.path.join(out, "results", "photos-speed.json"), results)
    return results


def wall_clock(name, iterations, timing):
    """Seconds to reach each of ``iterations`` on this machine, the critic boost included."""
    from wgan_tf import config

    step, critic = timing["seconds_per_generator_iteration"], \
        timing["seconds_per_critic_iteration"]
    boost = "clip" in name
    n_critic = 5 if name.startswith("wgan") else 1
    return [g * step + (config.critic_iterations_before(g, n_critic, boost) - g * n_critic)
            * (critic or 0.0) for g in iterations]


def read_metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        return list(csv.DictReader(f))


def measured(rows, key):
    """(iterations, values) of the rows where ``key`` was measured."""
    points = [(int(r["generator_iteration"]), float(r[key])) for r in rows
              if r.get(key) not in (None, "", "nan") and not math.isnan(float(r[key]))]
    return [p[0] for p in points], [p[1] for p in points]


def quality_curves(rows):
    """{"raw": ..., "ema": ...}: each one's iterations, classifier FD and KID where measured."""
    curves = {}
    for prefix, variant in (("raw_", "raw"), ("", "ema")):
        iterations, fd = measured(rows, f"{prefix}classifier_fd")
        _, kid = measured(rows, f"{prefix}classifier_kid")
        curves[variant] = {"iterations": iterations, "classifier_fd": fd, "classifier_kid": kid}
    return curves


def report(names, runs, out):
    timing_path = os.path.join(out, "results", "photos-speed.json")
    timing = json.load(open(timing_path)) if os.path.exists(timing_path) else {}
    results = {"data": "../shared/data/flowers (3,887 photographs, 5 classes)",
               "measure": "Frechet distance and KID in the flowers classifier's features "
                          "(wgan_tf.metrics.folder_classifier), 2,000 samples",
               "runs": {}}
    for name in names:
        run_dir = os.path.join(runs, name)
        if not os.path.exists(os.path.join(run_dir, "metrics.csv")):
            continue
        rows = read_metrics(run_dir)
        label, own = {**SETTINGS, **SETTINGS_64}[name]
        entry = {"label": label, "flags": flags(name, "PATH")[2:],
                 "generator_iterations": int(rows[-1]["generator_iteration"])}
        entry.update(quality_curves(rows))
        if name in timing:
            entry["timing"] = timing[name]
            entry["wall_clock_seconds"] = wall_clock(name, entry["raw"]["iterations"],
                                                     timing[name])
        results["runs"][name] = entry
    _write(os.path.join(out, "results", "photos.json"), results)
    curves_figure(results, os.path.join(out, "figures", "photos-curves.png"))
    samples_figure(results, runs, os.path.join(out, "figures", "photos-samples.png"))
    return results


def curves_figure(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, entry in results["runs"].items():
        for variant, style in (("raw", "-"), ("ema", "--")):
            curve = entry[variant]
            if not curve["iterations"]:
                continue
            label = entry["label"] + (" + EMA" if variant == "ema" else "")
            line, = axes[0].plot(curve["iterations"], curve["classifier_fd"], style, marker=".",
                                 label=label, color=_colour(name))
            if "wall_clock_seconds" in entry:
                axes[1].plot([s / 3600 for s in entry["wall_clock_seconds"]],
                             curve["classifier_fd"], style, marker=".", color=line.get_color())
    axes[0].set_xlabel("generator iterations")
    axes[1].set_xlabel("wall-clock hours on 2 CPU cores (measured seconds per iteration)")
    for ax in axes:
        ax.set_ylabel("classifier FD (lower is better)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Flowers (3,887 photographs): sample quality during training", fontsize=10)
    fig.tight_layout()
    _savefig(fig, path)


def _colour(name):
    names = [*SETTINGS, *SETTINGS_64]
    return f"C{names.index(name)}"


def samples_figure(results, runs, path):
    """Each run's sample grid (the EMA's, from the same latents) at the iterations all have."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    names = [n for n in results["runs"] if n in SETTINGS]
    if not names:
        return
    common = sorted(set.intersection(*(set(_grid_iterations(runs, n)) for n in names)))
    shown = [common[i] for i in sorted({round(k * (len(common) - 1) / 3)
                                        for k in range(4)})] if common else []
    if not shown:
        return
    fig, axes = plt.subplots(len(names), len(shown), figsize=(3 * len(shown), 3 * len(names)),
                             squeeze=False)
    for r, (row, name) in enumerate(zip(axes, names)):
        for ax, iteration in zip(row, shown):
            grid = Image.open(os.path.join(runs, name, "samples", f"iter_{iteration:06d}.png"))
            ax.imshow(grid)
            ax.set_xticks([])
            ax.set_yticks([])
            if ax is row[0]:
                ax.set_ylabel(results["runs"][name]["label"] + " + EMA", fontsize=8)
            if r == 0:  # (a row of a 2-D array of axes is a new view each time: not "is")
                ax.set_title(f"generator iteration {iteration}", fontsize=9)
    fig.tight_layout()
    _savefig(fig, path)


def class_grid(model, columns):
    """(uint8 picture, class names) of a loaded conditional export: one row per class, seeds
    0..columns-1 in every row, through ``from_seeds`` (what ``wgan-tf generate --label all``
    asks)."""
    import numpy as np

    from wgan_tf import pictures

    names = [n.decode() for n in model.signatures["classes"](
        index=np.zeros([1], np.int64))["class_names"].numpy()[0]]
    seeds = np.tile(np.arange(columns, dtype=np.int64), len(names))
    labels = np.repeat(np.arange(len(names), dtype=np.int64), columns)
    images = model.signatures["from_seeds"](seeds=seeds, labels=labels)["images"].numpy()
    return pictures.grid(images, columns=columns), names


def model_figure(model_dir, path, count=64):
    """A committed colour model's images through the exported ``from_seeds`` signature the
    server answers with: seeds 0..count-1 (what ``wgan-tf generate --model-name flowers --seed
    0`` returns), or for a conditional model one row per class, seeds 0..11 in every row."""
    import numpy as np
    import tensorflow as tf

    from wgan_tf import pictures

    model = tf.saved_model.load(model_dir)
    if "classes" in model.signatures:
        grid, _ = class_grid(model, 12)
    else:
        images = model.signatures["from_seeds"](seeds=np.arange(count, dtype=np.int64))["images"]
        grid = pictures.grid(images.numpy(), columns=8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pictures.save_png(grid, path)
    print(path)


def _grid_iterations(runs, name):
    folder = os.path.join(runs, name, "samples")
    return [int(f[5:11]) for f in os.listdir(folder) if f.startswith("iter_")] \
        if os.path.isdir(folder) else []


def _savefig(fig, path):
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _write(path, results):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    print(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("train", "speed", "report", "figures", "trajectory",
                                            "all"))
    parser.add_argument("--runs", default=RUNS, help="where the runs are (default %(default)s)")
    parser.add_argument("--out", default=OUT, help="where results/ and figures/ go")
    parser.add_argument("--data", default=DATA, help="the photo folder (default: "
                        "../shared/data/flowers)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"generator iterations per run (default {DEFAULT_STEPS}, "
                             f"64x64: {STEPS['flowers64']})")
    parser.add_argument("--only", nargs="+", choices=[*SETTINGS, *SETTINGS_64],
                        help="these runs only (default: the 32x32 comparison)")
    parser.add_argument("--model", default=MODEL,
                        help="report, figures: the exported colour model whose samples make "
                             "figures/flowers-model.png, where it exists (default %(default)s)")
    parser.add_argument("--twin", default=TWIN,
                        help="report, figures: the unconditional twin, whose samples make "
                             "figures/flowers-unconditional-model.png, where it exists "
                             "(default %(default)s)")
    parser.add_argument("--smoke", action="store_true",
                        help="every command end to end in seconds (16x16, tiny networks)")
    args = parser.parse_args()
    names = args.only or list(SETTINGS)
    steps = {name: args.steps or STEPS.get(name, DEFAULT_STEPS) for name in names}
    if args.command in ("train", "all"):
        train(names, {n: 4 for n in names} if args.smoke else steps, args.runs, args.data,
              smoke=args.smoke)
    if args.command in ("speed", "all"):
        speed(names, args.out, args.smoke)
    if args.command in ("report", "all"):
        report([*SETTINGS, *SETTINGS_64] if not args.only else names, args.runs, args.out)
    if args.command == "trajectory":
        trajectory(names, args.runs, args.out, 32 if args.smoke else 2000)
    if args.command in ("report", "figures", "all"):
        if os.path.exists(os.path.join(args.model, "saved_model.pb")):
            model_figure(args.model, os.path.join(args.out, "figures", "flowers-model.png"))
        if os.path.exists(os.path.join(args.twin, "saved_model.pb")):
            model_figure(args.twin, os.path.join(args.out, "figures",
                                                 "flowers-unconditional-model.png"), count=48)


if __name__ == "__main__":
    main()
