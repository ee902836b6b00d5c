"""The WGAN-GP paper's conditional model, measured: does a generator asked for a class make it, and
what does conditioning do to quality? On the built-in digits (16x16, ten classes) and on the
flowers (32x32, five classes; the runs of experiments/photos.py).

    python experiments/conditional.py train     # the digits runs (the flowers' are photos.py's)
    python experiments/conditional.py report    # JSON and figures
    python experiments/conditional.py all

Digits: WGAN-GP's DCGAN at 64 base filters, 2,000 generator iterations, seed 0, three runs: the
unconditional model; the conditional one with the paper's weights for the auxiliary classifier's
cross-entropy (1 in the critic's loss, 0.1 in the generator's); and the conditional one with 1 in
the generator's (``--generated-class-weight 1``). Flowers: photos.py's ``wgan-gp`` and
``wgan-gp-conditional`` (the paper's weights).

Each run is exported (``wgan-tf export``, the SavedModel that is served) and measured with
``wgan-tf evaluate`` (2,000 samples; a conditional model's ask for every class in turn):
``class_accuracy``, how often the dataset's own classifier (``wgan_tf.metrics``) assigns a sample
to the class asked for (an unconditional model has none: chance is 1/10 or 1/5);
``per_class_classifier_fd``, the Fréchet distance in that classifier's features between the real
and the generated images of each class; and ``classifier_fd`` overall.

Writes docs/results/conditional.json, docs/figures/conditional-digits.png and
conditional-flowers.png (one row per class, the same seeds in every row, from the exported
model's ``from_seeds`` signature) and conditional-interpolation.png (one strip per class along
the spherical path between two seeds, from its ``interpolate`` signature).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

RUNS = "runs/conditional"
PHOTO_RUNS = "runs/photos"
OUT = "docs"
DIGITS = ["--dataset", "digits", "--image-size", "16", "--channels", "1", "--filters", "64",
          "--penalty", "gp", "--seed", "0", "--log-every", "50", "--sample-every", "500",
          "--checkpoint-every", "500", "--eval-every", "500", "--eval-num", "2000"]
SMOKE = ["--filters", "8", "--batch-size", "8", "--n-critic", "2", "--log-every", "1",
         "--sample-every", "2", "--checkpoint-every", "2", "--eval-every", "2", "--eval-num",
         "32"]
STEPS = 2000
DIGIT_RUNS = {  # name -> (label, flags)
    "digits-unconditional": ("unconditional", []),
    "digits-conditional": ("conditional, the paper's weights (1, 0.1)", ["--conditional"]),
    "digits-conditional-g1": ("conditional, generator's weight 1",
                              ["--conditional", "--generated-class-weight", "1"]),
}
FLOWER_RUNS = {"wgan-gp": "unconditional",
               "wgan-gp-conditional": "conditional, the paper's weights (1, 0.1)"}
SEEDS = 8


def wgan_tf(*args, **kwargs):
    command = [os.path.join(os.path.dirname(sys.executable), "wgan-tf"), *map(str, args)]
    print(" ".join(command), flush=True)
    return subprocess.run(command, check=True, **kwargs)


def train(runs, steps, smoke=False):
    for name, (_, extra) in DIGIT_RUNS.items():
        wgan_tf("train", *DIGITS, *extra, *(SMOKE if smoke else []), "--steps", steps,
                "--out", os.path.join(runs, name), "--quiet")


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


def class_grid(model):
    """uint8 picture: one row per class, the same SEEDS seeds in every row (``from_seeds``)."""
    from wgan_tf import pictures

    names = [n.decode() for n in model.signatures["classes"](
        index=np.zeros([1], np.int64))["class_names"].numpy()[0]]
    seeds = np.tile(np.arange(SEEDS, dtype=np.int64), len(names))
    labels = np.repeat(np.arange(len(names), dtype=np.int64), SEEDS)
    images = model.signatures["from_seeds"](seeds=seeds, labels=labels)["images"].numpy()
    return pictures.grid(images, columns=SEEDS), names


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


def report(runs, photo_runs, out, num=2000):
    from wgan_tf import pictures

    results, figures = {}, os.path.join(out, "figures")
    os.makedirs(figures, exist_ok=True)
    for dataset, where, names in (("digits", runs, {k: v[0] for k, v in DIGIT_RUNS.items()}),
                                  ("flowers", photo_runs, FLOWER_RUNS)):
        entry = {}
        for name, label in names.items():
            run_dir = os.path.join(where, name)
            if not os.path.exists(os.path.join(run_dir, "config.json")):
                continue
            entry[name] = {"label": label, **measure(run_dir, num)}
            if "unconditional" in name or name == "wgan-gp":
                continue
            model = export(run_dir, os.path.join(run_dir, "exported"))
            grid, classes = class_grid(model)
            pictures.save_png(grid, os.path.join(figures, f"conditional-{name}.png"))
            entry[name]["classes"] = classes
            if name in ("digits-conditional-g1", "wgan-gp-conditional"):
                pictures.save_png(interpolation_strips(model),
                                  os.path.join(figures, f"conditional-{name}-interpolation.png"))
        if entry:
            results[dataset] = entry
    path = os.path.join(out, "results", "conditional.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    print(path)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("train", "report", "all"))
    parser.add_argument("--runs", default=RUNS)
    parser.add_argument("--photo-runs", default=PHOTO_RUNS,
                        help="experiments/photos.py's runs (the flowers' wgan-gp and "
                             "wgan-gp-conditional)")
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--smoke", action="store_true",
                        help="every command end to end in seconds (tiny networks, 4 iterations)")
    args = parser.parse_args()
    if args.command in ("train", "all"):
        train(args.runs, 4 if args.smoke else args.steps, args.smoke)
    if args.command in ("report", "all"):
        report(args.runs, args.photo_runs, args.out, num=100 if args.smoke else 2000)


if __name__ == "__main__":
    main()
