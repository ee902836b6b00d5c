"""Quality per CPU-minute: training recipes for 64x64 photographs compared at equal wall-clock time
on ../shared/data/flowers (issue 21), the paper's WGAN-GP recipe the baseline.

    python experiments/recipes.py speed                  # seconds per iteration, quiet machine
    python experiments/recipes.py train [--minutes 8]    # every recipe for the same CPU-minutes
    python experiments/recipes.py report                 # table, curves and sample grids
    python experiments/recipes.py all

``speed`` times each recipe's generator iteration on a batch in memory, on a quiet machine (nothing
else running), into docs/results/recipes-speed.json. ``train`` gives every recipe the same budget
of CPU-minutes on 2 cores: iterations = minutes / its seconds per iteration, measured at four
evenly spaced points of its budget (``--eval-every``: classifier FD and KID of the EMA and of the
raw generator, 2,000 samples). The runs take turns a quarter of the budget at a time and resume
(``wgan-tf train`` with the same ``--out``), so a stopped experiment continues. The wall-clock axis
is iterations times the measured seconds per iteration: the runs themselves may share the
machine with other work. ``report`` writes docs/results/recipes.json,
docs/figures/recipes-curves.png and docs/figures/recipes-samples.png.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from photos import (DATA, _savefig, _wgan_tf, _write, quality_curves,  # noqa: E402
                    read_metrics, seconds_per_iteration_of)

RUNS = "runs/recipes"
OUT = "docs"
MINUTES = 8
QUARTERS = 4
LOG_EVERY = 10
# What every recipe shares: 64x64 flowers, batch 64, seed 0, a DCGAN of 32 base filters in
# bfloat16 (the committed model's size), a generator EMA, quality measured on 2,000 samples.
COMMON = ["--image-size", "64", "--channels", "3", "--batch-size", "64", "--seed", "0",
          "--filters", "32", "--precision", "bfloat16", "--ema", "0.999", "--eval-num", "2000",
          "--log-every", str(LOG_EVERY)]
AUGMENT = ["--augment", "color,translation,cutout"]
ONE_STEP = ["--penalty", "gp", "--n-critic", "1", "--learning-rate", "4e-4",
            "--generator-learning-rate", "1e-4", "--beta-1", "0", "--beta-2", "0.9",
            "--drift", "1e-3", "--critic-normalization", "none"]
LAZY = [*ONE_STEP, "--penalty-every", "4"]
# name -> (label, flags). The paper's WGAN-GP first: the baseline.
CANDIDATES = {
    "paper": ("WGAN-GP, the paper's recipe: 5 critic steps, Adam 1e-4 (0, 0.9), layer norm",
              ["--penalty", "gp"]),
    "one-step": ("1 critic step, TTUR 4e-4 / 1e-4, drift 1e-3, no critic norm", ONE_STEP),
    "lazy": ("+ penalty every 4th step (x4)", LAZY),
    "lazy-augment": ("+ DiffAugment", [*LAZY, *AUGMENT]),
    "lazy-augment-zero": ("+ zero-centred penalty", [*LAZY, *AUGMENT, "--gp-target", "0"]),
    "lazy-augment-wide": ("+ 64 base filters", [*LAZY, *AUGMENT, "--filters", "64"]),
    "lazy-augment-g2": ("fast, generator learning rate 2e-4 (instead of 1e-4)",
                        [*LAZY, *AUGMENT, "--generator-learning-rate", "2e-4"]),
    "lazy-augment-g4": ("fast, generator learning rate 4e-4 (the critic's)",
                        [*LAZY, *AUGMENT, "--generator-learning-rate", "4e-4"]),
    "gan-augment": ("GAN (-log D), DCGAN's Adam, + DiffAugment", ["--model", "gan", *AUGMENT]),
}
# Recipes that differ from another only in a learning rate's value run the same graph: they take
# its seconds per iteration (the same budget of iterations), not a measurement of their own.
SAME_SPEED = {"lazy-augment-g2": "lazy-augment", "lazy-augment-g4": "lazy-augment"}
SMOKE = ["--image-size", "16", "--filters", "8", "--batch-size", "8", "--eval-num", "32",
         "--precision", "float32", "--log-every", "1"]


def flags(name, data=DATA, smoke=False):
    return ["--dataset", f"folder:{os.path.normpath(data)}", *COMMON, *CANDIDATES[name][1],
            *(SMOKE if smoke else [])]


def speed(names, out, data=DATA, smoke=False):
    """Each of ``names``' seconds per iteration, into recipes-speed.json beside the recipes already
    there."""
    path = os.path.join(out, "results", "recipes-speed.json")
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    for name in names:
        if name in SAME_SPEED:
            print(f"{name}: the same graph as {SAME_SPEED[name]}, whose seconds it takes")
            continue
        step, _ = seconds_per_iteration_of(flags(name, data, smoke), iterations=8)
        results[name] = {"seconds_per_generator_iteration": step}
        print(name, results[name], flush=True)
    _write(path, {n: results[n] for n in CANDIDATES if n in results})
    return results


def schedule(seconds, minutes, log_every=LOG_EVERY):
    """(iterations in ``minutes`` at ``seconds`` per iteration, measured every quarter of them),
    the quarter a multiple of the logging period."""
    quarter = max(round(minutes * 60 / seconds / QUARTERS / log_every), 1) * log_every
    return QUARTERS * quarter, quarter


def train(names, minutes, runs, out, data=DATA, smoke=False):
    """Every recipe a quarter of its budget at a time, resuming, until each has its budget."""
    import subprocess

    timing = _timing(out)
    plans = {name: schedule(timing[name]["seconds_per_generator_iteration"], minutes,
                            1 if smoke else LOG_EVERY) for name in names}
    for quarter in range(1, QUARTERS + 1):
        for name in names:
            total, every = plans[name]
            command = [_wgan_tf(), "train", *flags(name, data, smoke), "--steps",
                       str(quarter * every), "--eval-every", str(every), "--sample-every",
                       str(every), "--checkpoint-every", str(every), "--out",
                       os.path.join(runs, name), "--data-cache", os.path.join(runs, "data-cache"),
                       "--quiet"]
            print(" ".join(command), flush=True)
            subprocess.run(command, check=True)


def _timing(out):
    path = os.path.join(out, "results", "recipes-speed.json")
    if not os.path.exists(path):
        raise SystemExit(f"{path} is missing: run `experiments/recipes.py speed` first, on a "
                         "quiet machine")
    with open(path) as f:
        timing = json.load(f)
    timing.update({name: timing[like] for name, like in SAME_SPEED.items() if like in timing})
    return timing


def report(names, runs, out):
    timing = _timing(out)
    results = {"data": "../shared/data/flowers (3,887 photographs, 5 classes), 64x64",
               "measure": "Frechet distance and KID in the 64x64 flowers classifier's features "
                          "(wgan_tf.metrics.folder_classifier), 2,000 samples",
               "runs": {}}
    # A recipe whose run directory is not here keeps what the last report recorded of it.
    path = os.path.join(out, "results", "recipes.json")
    if os.path.exists(path):
        with open(path) as f:
            recorded = json.load(f)
        kept = {n: e for n, e in recorded.get("runs", {}).items()
                if n in names and not os.path.exists(os.path.join(runs, n, "metrics.csv"))}
        results["runs"].update(kept)
        if kept and "recorded" in recorded:  # says where the kept entries came from
            results["recorded"] = recorded["recorded"]
    for name in names:
        run_dir = os.path.join(runs, name)
        if not os.path.exists(os.path.join(run_dir, "metrics.csv")):
            continue
        rows = read_metrics(run_dir)
        seconds = timing[name]["seconds_per_generator_iteration"]
        entry = {"label": CANDIDATES[name][0], "flags": flags(name, "PATH")[2:],
                 "seconds_per_generator_iteration": seconds}
        for variant, curve in quality_curves(rows).items():
            entry[variant] = {**curve, "minutes": [i * seconds / 60 for i in curve["iterations"]]}
        results["runs"][name] = entry
    results["runs"] = {n: results["runs"][n] for n in CANDIDATES if n in results["runs"]}
    _write(os.path.join(out, "results", "recipes.json"), results)
    curves_figure(results, os.path.join(out, "figures", "recipes-curves.png"))
    samples_figure(results, runs, os.path.join(out, "figures", "recipes-samples.png"))
    return results


def curves_figure(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [(key, label) for key, label in (("classifier_fd", "classifier FD"),
                                            ("classifier_kid", "classifier KID"))
            if any(v is not None for e in results["runs"].values()
                   for variant in ("ema", "raw") for v in e[variant][key])]
    fig, axes = plt.subplots(1, len(keys), figsize=(6.5 * len(keys), 4.8), squeeze=False)
    axes = axes[0]
    for i, (name, entry) in enumerate(results["runs"].items()):
        for variant, style in (("ema", "-"), ("raw", ":")):
            curve = entry[variant]
            for ax, (key, _) in zip(axes, keys):
                points = [(m, v) for m, v in zip(curve["minutes"], curve[key]) if v is not None]
                ax.plot(*zip(*points), style, marker="o" if variant == "ema" else "x",
                        color=f"C{i}", label=f"{name} ({'EMA' if variant == 'ema' else 'raw'})")
    for ax, (_, label) in zip(axes, keys):
        ax.set_xlabel("CPU-minutes on 2 cores (iterations x measured seconds per iteration)")
        ax.set_ylabel(f"{label} (lower is better)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle("Flowers 64x64: sample quality against CPU time, per recipe (EMA solid, raw "
                 "dotted)", fontsize=10)
    fig.tight_layout()
    _savefig(fig, path)


def samples_figure(results, runs, path):
    """Each recipe's last sample grid (the EMA's, the same latents), side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    names = [n for n in results["runs"] if _last_grid(runs, n)]
    if not names:
        return
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 4.3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, name in zip(axes.ravel(), names):
        ax.imshow(Image.open(_last_grid(runs, name)))
        entry = results["runs"][name]
        ax.set_title(f"{name}: {entry['ema']['minutes'][-1]:.0f} min, FD "
                     f"{entry['ema']['classifier_fd'][-1]:.0f}", fontsize=9)
    fig.tight_layout()
    _savefig(fig, path)


def _last_grid(runs, name):
    folder = os.path.join(runs, name, "samples")
    grids = sorted(f for f in os.listdir(folder) if f.startswith("iter_")) \
        if os.path.isdir(folder) else []
    return os.path.join(folder, grids[-1]) if grids else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("speed", "train", "report", "all"))
    parser.add_argument("--minutes", type=float, default=MINUTES,
                        help="CPU-minutes per recipe (default %(default)s)")
    parser.add_argument("--only", nargs="+", choices=list(CANDIDATES))
    parser.add_argument("--runs", default=RUNS)
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--smoke", action="store_true",
                        help="every command end to end in seconds (16x16, tiny networks)")
    args = parser.parse_args()
    names = args.only or list(CANDIDATES)
    if args.command in ("speed", "all"):
        speed(names, args.out, args.data, args.smoke)
    if args.command in ("train", "all"):
        # --smoke: a budget of a few iterations per quarter
        train(names, 0.002 if args.smoke else args.minutes, args.runs, args.out, args.data,
              args.smoke)
    if args.command in ("report", "all"):
        report(names, args.runs, args.out)


if __name__ == "__main__":
    main()
