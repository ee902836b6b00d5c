"""Conditional models, measured: does a generator asked for a class make it, and what does
conditioning do to quality? The projection critic (the default, Miyato & Koyama 2018) against the
WGAN-GP paper's auxiliary classifier (AC-GAN, with the paper's weights and with the generator's
raised to 1) and the unconditional model, on the built-in digits (16x16, ten classes) and on the
flowers (64x64, five classes).

    python experiments/conditional.py train [--only NAME ...]   # train (or resume) the runs
    python experiments/conditional.py report                   # JSON and figures
    python experiments/conditional.py all

Digits: the demo's settings (WGAN-GP's DCGAN at 64 base filters, 16x16, seed 0), 1,500 generator
iterations. Flowers: the photo recipe (``--recipe fast``, the best WGAN recipe of
experiments/recipes.py) at 64x64, ``FLOWER_STEPS`` generator iterations (five minutes of two quiet
cores), every variant its own run from the same seed.

Each run is exported (``wgan-tf export``) and measured twice: with ``wgan-tf evaluate`` (2,000
samples, every class in turn: ``class_accuracy`` by the dataset's own classifier,
``per_class_classifier_fd``, ``classifier_fd`` and KID overall) and as an application gets it:
``SERVED`` seeds of every class asked of ``wgan-tf serve`` over gRPC (experiments/served.py),
given to the same classifier. Writes docs/results/conditional.json and, per conditional run,
docs/figures/conditional-NAME.png (one row per class, the same seeds in every row, from the
exported model's ``from_seeds``) and, for the projection runs,
conditional-NAME-interpolation.png (one strip per class along the spherical path between two
seeds, from ``interpolate``).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import photos  # noqa: E402
import served  # noqa: E402

RUNS = "runs/conditional"
OUT = "docs"
DIGITS = ["--dataset", "digits", "--image-size", "16", "--channels", "1", "--penalty", "gp",
          "--seed", "0", "--log-every", "50", "--sample-every", "500", "--checkpoint-every", "500",
          "--eval-every", "500", "--eval-num", "2000"]
SMOKE = ["--filters", "8", "--batch-size", "8", "--n-critic", "2", "--log-every", "1",
         "--sample-every", "2", "--checkpoint-every", "2", "--eval-every", "2", "--eval-num",
         "32", "--image-size", "16", "--precision", "float32"]
DIGIT_STEPS = 1500
ACGAN = ["--conditional", "--conditioning", "acgan"]
VARIANTS = {  # suffix -> (label, flags)
    "unconditional": ("unconditional", []),
    "projection": ("conditional, projection critic", ["--conditional"]),
    "acgan": ("conditional, AC-GAN, the paper's weights (1, 0.1)", ACGAN),
    "acgan-g1": ("conditional, AC-GAN, generator's weight 1",
                 [*ACGAN, "--generated-class-weight", "1"]),
}
# The flowers: the photo recipe (--recipe fast, experiments/recipes.py's best WGAN recipe), 64x64.
FLOWERS = ["--dataset", f"folder:{os.path.normpath(photos.DATA)}", "--recipe", "fast",
           "--image-size", "64", "--channels", "3", "--batch-size", "64", "--seed", "0",
           "--log-every", "10", "--sample-every", "640", "--checkpoint-every", "640",
           "--eval-every", "0"]
FLOWER_STEPS = 1280
SERVED = 50  # seeds per class asked of the server
SEEDS = 8


def wgan_tf(*args, **kwargs):
    command = [os.path.join(os.path.dirname(sys.executable), "wgan-tf"), *map(str, args)]
    print(" ".join(command), flush=True)
    return subprocess.run(command, check=True, **kwargs)


def runs_to_make(runs, smoke=False):
    """{name: (label, run directory, flags)}."""
    made = {}
    for variant, (label, extra) in VARIANTS.items():
        made[f"digits-{variant}"] = (label, os.path.join(runs, f"digits-{variant}"),
                                     [*DIGITS, *extra, "--steps", DIGIT_STEPS])
        made[f"flowers-{variant}"] = (label, os.path.join(runs, f"flowers-{variant}"),
                                      [*FLOWERS, *extra, "--steps", FLOWER_STEPS])
    if smoke:
        for name, (label, run_dir, flags) in made.items():
            made[name] = (label, run_dir, [*flags, *SMOKE, "--steps", 4])
    return made


def train(names, runs, smoke=False):
    made = runs_to_make(runs, smoke)
    for name in names:
        _, run_dir, flags = made[name]
        if name.startswith("flowers"):
            flags = [*flags, "--data-cache", os.path.join(runs, "data-cache")]
        wgan_tf("train", *flags, "--out", run_dir, "--quiet")


def measure(run_dir, num):
    out = os.path.join(run_dir, "evaluate.json")
    wgan_tf("evaluate", run_dir, "--num", num, "--out", out, stdout=subprocess.DEVNULL)
    with open(out) as f:
        measured = json.load(f)
    return {key: measured.get(key) for key in (
        "generator_iteration", "generator", "classifier", "classifier_fd", "classifier_kid",
        "class_accuracy", "per_class_classifier_fd")}


def export(run_dir, base):
    shutil.rmtree(base, ignore_errors=True)
    wgan_tf("export", run_dir, "--out", base, "--version", 1, stdout=subprocess.DEVNULL)
    import tensorflow as tf

    return tf.saved_model.load(os.path.join(base, "1"))


def interpolation_strips(model, seed_a=3, seed_b=11, steps=SEEDS):
    """uint8 picture: per class, the images along the spherical path from seed_a to seed_b."""
    from wgan_tf import pictures

    count = model.signatures["classes"](index=np.zeros([1], np.int64))["class_names"].shape[1]
    t = np.tile(np.linspace(0, 1, steps, dtype=np.float32), count)
    labels = np.repeat(np.arange(count, dtype=np.int64), steps)
    images = model.signatures["interpolate"](
        seed_a=np.full_like(labels, seed_a), seed_b=np.full_like(labels, seed_b), t=t,
        labels=labels)["images"].numpy()
    return pictures.grid(images, columns=steps)


def report(names, runs, out, num=2000, served_per_class=SERVED, smoke=False):
    from wgan_tf import data, pictures

    made = runs_to_make(runs, smoke)
    path = os.path.join(out, "results", "conditional.json")
    results = json.load(open(path)) if os.path.exists(path) and not smoke else {}
    figures = os.path.join(out, "figures")
    os.makedirs(figures, exist_ok=True)
    for name in names:
        label, run_dir, _ = made[name]
        if not os.path.exists(os.path.join(run_dir, "config.json")):
            continue
        dataset = name.split("-")[0]
        entry = {"label": label, **measure(run_dir, num)}
        model = export(run_dir, os.path.join(run_dir, "exported"))
        with open(os.path.join(run_dir, "config.json")) as f:
            config = json.load(f)
        spec = config["dataset"]
        # As many images from the unconditional model as from a conditional one over its classes.
        count = served_per_class if config.get("conditional") \
            else served_per_class * len(data.class_names(spec))
        images, labels, classes = served.served_images(
            os.path.join(run_dir, "exported"), count, per_class=True)
        entry["served"] = served.measure(images, labels, spec, classes)
        if classes:
            grid, _ = photos.class_grid(model, SEEDS)
            pictures.save_png(grid, os.path.join(figures, f"conditional-{name}.png"))
            entry["classes"] = classes
            if name.endswith("projection"):
                pictures.save_png(interpolation_strips(model),
                                  os.path.join(figures, f"conditional-{name}-interpolation.png"))
        results.setdefault(dataset, {})[name] = entry
        print(name, {k: entry[k] for k in ("classifier_fd", "class_accuracy")},
              entry["served"].get("class_accuracy"), flush=True)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    print(path)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("train", "report", "all"))
    parser.add_argument("--only", nargs="+", help="these runs only (default: every one)")
    parser.add_argument("--runs", default=RUNS)
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--smoke", action="store_true",
                        help="every command end to end in seconds (tiny networks, 4 iterations)")
    args = parser.parse_args()
    names = args.only or list(runs_to_make(args.runs))
    if args.command in ("train", "all"):
        train(names, args.runs, args.smoke)
    if args.command in ("report", "all"):
        report(names, args.runs, args.out, num=100 if args.smoke else 2000,
               served_per_class=4 if args.smoke else SERVED, smoke=args.smoke)


if __name__ == "__main__":
    main()
