"""Quality under mixed precision: the same runs in float32, bfloat16 and float16, measured.

    python experiments/precision.py [--toy-steps 1000] [--digits-steps 500] [--trace-steps 2000]
        [--precisions float32,bfloat16[,float16]]

Two settings for quality, each trained once per precision (``--precision``), same seed:

- the README's toy command, ``wgan-tf train --dataset toy:25gaussians --arch mlp --penalty gp``
  (``--toy-steps`` generator iterations; the README's runs 100,000), measured by the exact W1 of
  2,000 samples (``wgan-tf evaluate``);
- the demo's setting (``make demo``: WGAN-GP's DCGAN on the digits at 16x16; ``--digits-steps``
  generator iterations, the demo runs 1,000), measured by the digits classifier's FD and KID.

float16 joins them only where a GPU is present (or ``--precisions`` names it): a CPU has no fast
float16 kernels: the toy's float16 run had not logged 10 iterations after 3.6 CPU-minutes here
(float32: 0.09 s per iteration).

The float16 trace: WGAN-GP with the gradient penalty in float16 for ``--trace-steps`` generator
iterations on the digits (a small DCGAN: 8 base filters, batch 16, so that it runs on a CPU),
logged every 5: its ``critic_loss_scale`` and ``generator_loss_scale`` columns (the package's loss
scaling, the penalty's inner gradient included) show whether the scale collapses or a value turns
NaN, as GP runs under mixed precision are known to (tensorflow#48662, StudioGAN #175 at ~1,500
steps); the same run in float32 beside it is the control for its critic's estimate. Writes docs/results/precision.json and docs/figures/precision-loss-scale.png.
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
TRACE = ["--dataset", "digits", "--image-size", "16", "--channels", "1", "--penalty", "gp",
         "--filters", "8", "--batch-size", "16", "--log-every", "5", "--sample-every", "500",
         "--checkpoint-every", "500", "--seed", "0"]
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


def run(runs, toy_steps, digits_steps, trace_steps, precisions):
    results = {"toy_steps": toy_steps, "digits_steps": digits_steps, "trace_steps": trace_steps,
               "toy": {}, "digits": {}}
    for setting, flags, steps in (("toy", TOY, toy_steps), ("digits", DIGITS, digits_steps)):
        for name in precisions:
            run_dir = os.path.join(runs, f"{setting}-{name}")
            wgan_tf("train", *flags, "--precision", name, "--steps", steps, "--out", run_dir,
                    "--quiet")
            out = os.path.join(run_dir, "evaluate.json")
            wgan_tf("evaluate", run_dir, "--out", out, stdout=subprocess.DEVNULL)
            with open(out) as f:
                measured = json.load(f)
            keys = ("w1", "modes_covered", "high_quality") if setting == "toy" else (
                "classifier_fd", "classifier_kid", "mode_coverage")
            results[setting][name] = {k: measured.get(k) for k in keys}
    for name in ("float16", "float32"):  # float32: the same run without loss scaling, the control
        run_dir = os.path.join(runs, f"trace-{name}")
        wgan_tf("train", *TRACE, "--precision", name, "--steps", trace_steps, "--out", run_dir,
                "--quiet")
        logged = rows(run_dir)
        trace = {"flags": [*TRACE, "--precision", name],
                 "wasserstein": [(int(r["generator_iteration"]), float(r["wasserstein"]))
                                 for r in logged],
                 "non_finite_logged_values": sum(1 for r in logged for v in r.values()
                                                 if v in ("nan", "inf", "-inf"))}
        if name == "float16":
            trace["loss_scale_trace"] = {
                key: [(int(r["generator_iteration"]), float(r[key])) for r in logged]
                for key in ("critic_loss_scale", "generator_loss_scale")}
        results[f"{name}_trace"] = trace
    return results


def figure(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trace = results["float16_trace"]
    fig, (scale_ax, estimate_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, points in trace["loss_scale_trace"].items():
        scale_ax.plot([p[0] for p in points], [p[1] for p in points], label=key)
    scale_ax.set_yscale("log", base=2)
    scale_ax.set_ylabel("loss scale")
    scale_ax.set_title("float16 WGAN-GP: loss scales (the penalty's inner gradient scaled too)",
                       fontsize=8)
    scale_ax.legend(fontsize=7)
    for name in ("float16", "float32"):
        points = results[f"{name}_trace"]["wasserstein"]
        estimate_ax.plot([p[0] for p in points], [p[1] for p in points], label=name)
    estimate_ax.set_ylabel("critic's W estimate")
    estimate_ax.set_title(f"the same run in float16 ({trace['non_finite_logged_values']} "
                          "non-finite logged values) and float32", fontsize=8)
    estimate_ax.legend(fontsize=7)
    for ax in (scale_ax, estimate_ax):
        ax.set_xlabel("generator iteration")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def default_precisions():
    import tensorflow as tf

    return PRECISIONS if tf.config.list_physical_devices("GPU") else PRECISIONS[:2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default=RUNS)
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--toy-steps", type=int, default=1000)
    parser.add_argument("--digits-steps", type=int, default=500)
    parser.add_argument("--trace-steps", type=int, default=2000)
    parser.add_argument("--precisions", default=None,
                        help="of the quality runs (default: float32,bfloat16, and float16 where "
                             "a GPU is present)")
    args = parser.parse_args()
    precisions = args.precisions.split(",") if args.precisions else default_precisions()
    unknown = set(precisions) - set(PRECISIONS)
    if unknown:
        parser.error(f"unknown precision {sorted(unknown)[0]!r}: choose from {', '.join(PRECISIONS)}")
    results = run(args.runs, args.toy_steps, args.digits_steps, args.trace_steps, precisions)
    path = os.path.join(args.out, "results", "precision.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    figure(results, os.path.join(args.out, "figures", "precision-loss-scale.png"))
    print(path)


if __name__ == "__main__":
    main()
