"""Quality under mixed precision: the same runs in float32, bfloat16 and float16, measured.

    python experiments/precision.py [--toy-steps 1000] [--digits-steps 500]

Two settings, each trained three times (``--precision float32|bfloat16|float16``), same seed:

- the README's toy command, ``wgan-tf train --dataset toy:25gaussians --arch mlp --penalty gp``
  (``--toy-steps`` generator iterations; the README's runs 100,000), measured by the exact W1 of
  2,000 samples (``wgan-tf evaluate``);
- the demo's setting (``make demo``: WGAN-GP's DCGAN on the digits at 16x16; ``--digits-steps``
  generator iterations, the demo runs 1,000), measured by the digits classifier's FD and KID.

The defaults (1,000 and 500 iterations) are what 2 CPU cores allowed beside the other runs; float16
has no fast kernels on a CPU, so its runs are the slow ones.

The float16 runs train with loss scaling (``wgan_tf.precision``): their ``critic_loss_scale`` and
``generator_loss_scale`` columns of metrics.csv are the loss-scale trace, plotted with the critic
loss. Writes docs/results/precision.json and docs/figures/precision-loss-scale.png. On a CPU
float16 has no fast kernels (it is for GPUs): the float16 runs show the arithmetic, not the speed.
"""
import argparse
import csv
import json
import os
import subprocess
import sys

RUNS = "runs/precision"
OUT = "docs"
PRECISIONS = ("float32", "bfloat16", "float16")
TOY = ["--dataset", "toy:25gaussians", "--arch", "mlp", "--penalty", "gp", "--log-every", "10",
       "--sample-every", "500", "--checkpoint-every", "500", "--seed", "0"]
DIGITS = ["--dataset", "digits", "--image-size", "16", "--channels", "1", "--penalty", "gp",
          "--log-every", "50", "--sample-every", "250", "--checkpoint-every", "250", "--seed", "0"]


def wgan_tf(*args, **kwargs):
    command = [os.path.join(os.path.dirname(sys.executable), "wgan-tf"), *map(str, args)]
    print(" ".join(command), flush=True)
    return subprocess.run(command, check=True, **kwargs)


def rows(run_dir):
    with open(os.path.join(run_dir, "metrics.csv"), newline="") as f:
        return list(csv.DictReader(f))


def run(runs, toy_steps, digits_steps):
    results = {"toy_steps": toy_steps, "digits_steps": digits_steps, "toy": {}, "digits": {}}
    for setting, flags, steps in (("toy", TOY, toy_steps), ("digits", DIGITS, digits_steps)):
        for name in PRECISIONS:
            run_dir = os.path.join(runs, f"{setting}-{name}")
            wgan_tf("train", *flags, "--precision", name, "--steps", steps, "--out", run_dir,
                    "--quiet")
            out = os.path.join(run_dir, "evaluate.json")
            wgan_tf("evaluate", run_dir, "--out", out, stdout=subprocess.DEVNULL)
            with open(out) as f:
                measured = json.load(f)
            keys = ("w1", "modes_covered", "high_quality") if setting == "toy" else (
                "classifier_fd", "classifier_kid", "mode_coverage")
            entry = {k: measured.get(k) for k in keys}
            logged = rows(run_dir)
            if name == "float16":
                entry["loss_scale_trace"] = {
                    key: [(int(r["generator_iteration"]), float(r[key])) for r in logged]
                    for key in ("critic_loss_scale", "generator_loss_scale")}
                entry["non_finite_logged_values"] = sum(
                    1 for r in logged for v in r.values() if v in ("nan", "inf", "-inf"))
            results[setting][name] = entry
    return results


def figure(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, setting in zip(axes, ("toy", "digits")):
        trace = results[setting].get("float16", {}).get("loss_scale_trace", {})
        for key, points in trace.items():
            ax.plot([p[0] for p in points], [p[1] for p in points], label=key)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("generator iteration")
        ax.set_ylabel("loss scale")
        ax.set_title(f"float16, {setting}: loss scale (the penalty's inner gradient scaled too)",
                     fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default=RUNS)
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--toy-steps", type=int, default=1000)
    parser.add_argument("--digits-steps", type=int, default=500)
    args = parser.parse_args()
    results = run(args.runs, args.toy_steps, args.digits_steps)
    path = os.path.join(args.out, "results", "precision.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    figure(results, os.path.join(args.out, "figures", "precision-loss-scale.png"))
    print(path)


if __name__ == "__main__":
    main()
