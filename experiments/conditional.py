"""The WGAN-GP paper's conditional model, measured: does a generator asked for a class make it, and
does conditioning help quality? On the built-in digits (16x16, ten classes) and on the flowers
(32x32, five classes; the runs of experiments/photos.py).

    python experiments/conditional.py train     # the digits runs (the flowers' are photos.py's)
    python experiments/conditional.py report    # JSON and figures
    python experiments/conditional.py all

For each dataset, an unconditional and a conditional WGAN-GP with the same settings and seed. Each
is exported (``wgan-tf export``, the served model) and measured with ``wgan-tf evaluate`` (2,000
samples; the conditional model's ask for every class in turn): ``class_accuracy``, how often the
dataset's own classifier (``wgan_tf.metrics``: the digits classifier, the flowers classifier)
assigns a sample to the class asked for; ``per_class_classifier_fd``, the Fréchet distance in
that classifier's features between the real and the generated images of each class; and the
overall ``classifier_fd`` beside the unconditional model's. An unconditional model's samples have
no class asked for: its ``class_accuracy`` is that of a random guess (0.1 or 0.2).

Writes docs/results/conditional.json, docs/figures/conditional-digits.png and
conditional-flowers.png (one row per class, as the served model makes them) and
docs/figures/conditional-interpolation.png (a strip per class along the spherical path between two
seeds, from the served model's ``interpolate`` signature).
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RUNS = "runs/conditional"
PHOTO_RUNS = "runs/photos"
OUT = "docs"
DIGITS = ["--dataset", "digits", "--image-size", "16", "--channels", "1", "--filters", "32",
          "--penalty", "gp", "--seed", "0", "--log-every", "50", "--sample-every", "500",
          "--checkpoint-every", "500", "--eval-every", "250", "--eval-num", "2000"]
STEPS = 2000
# name -> (dataset label, run directory under --runs or --photo-runs, conditional)
RUN_NAMES = {
    "digits": ("digits", "digits-unconditional", "digits-conditional"),
    "flowers": ("flowers", "wgan-gp", "wgan-gp-conditional"),
}


def wgan_tf():
    return os.path.join(os.path.dirname(sys.executable), "wgan-tf")


def train(runs, steps):
    for name, extra in (("digits-unconditional", []), ("digits-conditional", ["--conditional"])):
        command = [wgan_tf(), "train", *DIGITS, *extra, "--steps", str(steps),
                   "--out", os.path.join(runs, name), "--quiet"]
        print(" ".join(command), flush=True)
        subprocess.run(command, check=True)


def evaluate(run_dir, out):
    subprocess.run([wgan_tf(), "evaluate", run_dir, "--num", "2000", "--out", out], check=True,
                   stdout=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f)


def report(runs, photo_runs, out):
    results = {}
    for dataset, (label, unconditional, conditional) in RUN_NAMES.items():
        where = runs if dataset == "digits" else photo_runs
        entry = {}
        for kind, name in (("unconditional", unconditional), ("conditional", conditional)):
            run_dir = os.path.join(where, name)
            if not os.path.exists(os.path.join(run_dir, "generator.keras")):
                continue
            measured = evaluate(run_dir, os.path.join(run_dir, "evaluate.json"))
            entry[kind] = {key: measured.get(key) for key in (
                "generator_iteration", "generator", "classifier", "classifier_fd",
                "classifier_kid", "class_accuracy", "per_class_classifier_fd")}
        if entry:
            results[dataset] = entry
    os.makedirs(os.path.join(out, "results"), exist_ok=True)
    path = os.path.join(out, "results", "conditional.json")
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
    args = parser.parse_args()
    if args.command in ("train", "all"):
        train(args.runs, args.steps)
    if args.command in ("report", "all"):
        report(args.runs, args.photo_runs, args.out)


if __name__ == "__main__":
    main()
