"""The WGAN paper's claims, measured at a size a 2-core CPU trains in minutes.

    python experiments/paper_claims.py meaningful-loss   # Figs. 3-4: the estimate tracks quality
    python experiments/paper_claims.py robustness        # Figs. 5-7: generators a GAN cannot train
    python experiments/paper_claims.py mode-collapse     # 25 Gaussians: modes kept
    python experiments/paper_claims.py optimizer         # RMSProp vs Adam on the critic
    python experiments/paper_claims.py all

Each experiment trains its runs under ``runs/experiments/`` (fresh every time), measures sample
quality every logging period with ``wgan_tf.metrics`` (exact W1 on toy data, the digits
classifier's Fréchet distance on digits), and writes ``docs/results/<name>.json`` and
``docs/figures/<name>.png``. docs/RESULTS.md quotes these files.
"""
import argparse
import json
import os
import re
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage, stats  # noqa: E402

from wgan_tf import data, metrics, rng  # noqa: E402
from wgan_tf.config import TrainConfig  # noqa: E402
from wgan_tf.train import train  # noqa: E402

RUNS = "runs/experiments"
OUT = "docs"
OVERRIDES = {}  # --steps for a quick check
NUM = 1000  # samples per quality measurement
# Toy settings of the WGAN-GP code (gan_toy.py): batch 256, 2-D noise, and a gradient-penalty
# weight of 0.1 (with the image setting's 10 and 5 critic iterations, the critic falls behind here).
TOY = dict(arch="mlp", latent_dim=2, batch_size=256, gp_weight=0.1, steps=1000, log_every=50,
           sample_every=500, checkpoint_every=1000, jit_compile="off")
DIGITS = dict(dataset="digits", image_size=16, channels=1, filters=32, steps=1000, log_every=50,
              sample_every=500, checkpoint_every=1000, jit_compile="off")
VARIANTS = {  # label -> model settings
    "WGAN (clipping)": dict(),
    # The WGAN-GP paper's Adam(1e-4, 0, 0.9) on every dataset, as these results were measured
    # (the package's toy default is now the toy code's beta1 0.5).
    "WGAN-GP": dict(penalty="gp", beta_1=0.0),
    "GAN (-log D)": dict(model="gan"),
}


class Quality(keras.callbacks.Callback):
    """Adds ``name`` = measure(generator samples) to each logging period's logs (so metrics.csv
    gets it), from one fixed latent batch."""

    def __init__(self, name, measure, latent_dim):
        super().__init__()
        self.name, self.measure = name, measure
        self.latent = rng.normal([NUM, latent_dim], 1234, stream=3, counter=1)

    def on_epoch_end(self, epoch, logs=None):
        samples = self.model.generator(self.latent, training=False).numpy()
        logs[self.name] = self.measure(np.clip(samples, -1, 1) if samples.ndim == 4 else samples)


def real_samples(spec, config):
    batches = data.load(spec, config.image_size, NUM, config.channels, seed=99)
    return next(iter(batches)).numpy()


def quality_measure(spec, config):
    """(name, function of generated samples) for a dataset."""
    real = real_samples(spec, config)
    if spec.startswith("toy:"):
        return "w1", lambda fake: metrics.w1_exact(real, fake)
    classifier = metrics.digits_classifier(config.image_size, config.channels)
    return "classifier_fd", lambda fake: metrics.classifier_fd(real, fake, classifier)


def run(name, label, **settings):
    """Trains one run from scratch and returns its metrics.csv rows as a dict of columns."""
    config = TrainConfig(**dict(settings, **OVERRIDES))
    slug = f"{settings['dataset']} {settings.get('arch', '')} {label}"
    run_dir = os.path.join(RUNS, name, re.sub(r"[^a-z0-9]+", "-", slug.lower()).strip("-"))
    shutil.rmtree(run_dir, ignore_errors=True)
    quality, measure = quality_measure(config.dataset, config)
    print(f"[{name}] {label}: {config.dataset}, {config.arch}, {config.steps} steps", flush=True)
    train(config, run_dir, progress=False,
          extra_callbacks=[Quality(quality, measure, config.latent_dim)])
    columns = np.genfromtxt(os.path.join(run_dir, "metrics.csv"), delimiter=",", names=True)
    result = {k: columns[k].tolist() for k in columns.dtype.names}
    result.update(run_dir=run_dir, quality=quality,
                  estimate="js_divergence" if config.model == "gan" else "wasserstein")
    return result


def final_samples(result):
    samples = sorted(os.listdir(os.path.join(result["run_dir"], "samples")))
    return plt.imread(os.path.join(result["run_dir"], "samples", samples[-1]))


def correlation(result):
    """Spearman's rank correlation between the critic's estimate and the quality measure over
    training (both are distances: lower is better, so agreement is positive)."""
    estimate = np.asarray(result[result["estimate"]])
    return float(stats.spearmanr(estimate, result[result["quality"]]).statistic)


def save(name, results, figure):
    summary = {label: {k: v for k, v in r.items() if k != "run_dir"} for label, r in results.items()}
    write_results(name, summary)
    save_figure(name, figure)


def write_results(name, values, indent=1):
    """``values`` (plain JSON data) to ``OUT/results/<name>.json``."""
    os.makedirs(f"{OUT}/results", exist_ok=True)
    with open(f"{OUT}/results/{name}.json", "w") as f:
        json.dump(values, f, indent=indent)
    print(f"wrote {OUT}/results/{name}.json")


def save_figure(name, figure):
    os.makedirs(f"{OUT}/figures", exist_ok=True)
    figure.savefig(f"{OUT}/figures/{name}.png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    print(f"wrote {OUT}/figures/{name}.png")


def curves_figure(results, title):
    """One row per run: the estimate (median-filtered, as the paper plots it) and the quality
    measure against generator iterations, and the last sample picture."""
    fig, axes = plt.subplots(len(results), 2, figsize=(9, 2.8 * len(results)),
                             gridspec_kw={"width_ratios": [2, 1]}, squeeze=False)
    for (label, r), (curve, picture) in zip(results.items(), axes):
        x = r["generator_iteration"]
        curve.plot(x, ndimage.median_filter(r[r["estimate"]], 3), color="tab:blue")
        curve.set_ylabel(r["estimate"], color="tab:blue")
        other = curve.twinx()
        other.plot(x, r[r["quality"]], color="tab:red")
        other.set_ylabel(r["quality"], color="tab:red")
        curve.set_title(f"{label}: Spearman {r['spearman']:+.2f}")
        curve.set_xlabel("generator iterations")
        picture.imshow(final_samples(r), cmap="gray")
        picture.set_axis_off()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def meaningful_loss():
    results = {}
    for label, objective in VARIANTS.items():
        results[f"toy, {label}"] = run("meaningful-loss", label, dataset="toy:8gaussians",
                                       **TOY, **objective)
    for label in ("WGAN (clipping)", "GAN (-log D)"):
        results[f"digits, {label}"] = run("meaningful-loss", label, **DIGITS, **VARIANTS[label])
    for r in results.values():
        r["spearman"] = correlation(r)
    save("meaningful-loss", results, curves_figure(
        results, "Critic estimate (blue) and sample quality (red, lower is better)"))
    return {label: round(r["spearman"], 3) for label, r in results.items()}


def robustness():
    results = {}
    for arch in ("dcgan", "dcgan-nobn", "mlp"):
        for label in ("WGAN (clipping)", "GAN (-log D)"):
            results[f"{arch}, {label}"] = run("robustness", label, arch=arch, **DIGITS,
                                              **VARIANTS[label])
    fig, axes = plt.subplots(2, 3, figsize=(10, 7))
    for (label, r), ax in zip(results.items(), axes.T.ravel()):
        ax.imshow(final_samples(r), cmap="gray")
        ax.set_title(f"{label}\nclassifier FD {r['classifier_fd'][-1]:.1f}", fontsize=9)
        ax.set_axis_off()
    fig.suptitle("Digits 16x16 after 1000 generator iterations (DCGAN critic in every run)")
    save("robustness", results, fig)
    return {label: round(r["classifier_fd"][-1], 2) for label, r in results.items()}


def mode_collapse():
    centers, std = metrics.toy_modes("25gaussians")
    results = {}
    for label, objective in VARIANTS.items():
        r = run("mode-collapse", label, dataset="toy:25gaussians", **TOY, **objective)
        latent = rng.normal([2000, TOY["latent_dim"]], 1234, stream=3, counter=2)
        generator = keras.saving.load_model(os.path.join(r["run_dir"], "generator.keras"))
        points = generator(latent).numpy()
        r.update(metrics.mode_stats(points, centers, std))
        r["points"] = points.round(4).tolist()  # kept so that --replot can redraw the figure
        results[label] = r
    save("mode-collapse", results, mode_collapse_figure(results))
    return {label: (r["modes_covered"], round(r["high_quality"], 3)) for label, r in
            results.items()}


def mode_collapse_figure(results):
    """One scatter per run: 2000 generated points over the 25 modes (its ``points``)."""
    centers, _ = metrics.toy_modes("25gaussians")
    fig, axes = plt.subplots(1, len(results), figsize=(4.6 * len(results), 5), squeeze=False)
    for (label, r), ax in zip(results.items(), axes[0]):
        ax.scatter(*np.asarray(r["points"]).T, s=1, c="tab:blue", label="generated")
        ax.scatter(*centers.T, s=60, c="tab:orange", marker="x", label="mode centres")
        ax.set(xlim=(-1, 1), ylim=(-1, 1), aspect="equal", xlabel="x₁", ylabel="x₂")
        ax.set_title(f"{label}\n{r['modes_covered']}/{r['num_modes']} modes covered,\n"
                     f"{r['high_quality']:.0%} of samples within 3 std of a mode", fontsize=10)
    axes[0, 0].legend(loc="lower left", fontsize=8, markerscale=1.5)
    iterations = int(next(iter(results.values()))["generator_iteration"][-1])
    fig.suptitle(f"25 Gaussians after {iterations} generator iterations: 2000 samples per "
                 "generator")
    fig.tight_layout()
    return fig


def optimizer():
    results = {}
    for name in ("rmsprop", "adam"):
        label = f"WGAN (clipping), {'RMSProp' if name == 'rmsprop' else 'Adam (beta1 0.5)'}"
        results[label] = run("optimizer", label, dataset="toy:25gaussians", optimizer=name, **TOY)
    for r in results.values():
        r["spearman"] = correlation(r)
        # Instability: how much the estimate jumps between logging periods, relative to its size.
        estimate = np.asarray(r["wasserstein"])
        r["estimate_jitter"] = float(np.median(np.abs(np.diff(estimate))) /
                                     (np.median(np.abs(estimate)) + 1e-12))
    save("optimizer", results, curves_figure(results, "Weight clipping with RMSProp and Adam"))
    return {label: {"final_w1": round(r["w1"][-1], 4), "spearman": round(r["spearman"], 3),
                    "estimate_jitter": round(r["estimate_jitter"], 3)}
            for label, r in results.items()}


EXPERIMENTS = {"meaningful-loss": meaningful_loss, "robustness": robustness,
               "mode-collapse": mode_collapse, "optimizer": optimizer}
# Figures that --replot can redraw from OUT/results/<name>.json alone.
FIGURES = {"mode-collapse": mode_collapse_figure}


def main():
    global OUT
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiment", choices=[*EXPERIMENTS, "all"])
    parser.add_argument("--steps", type=int, help="generator iterations per run (default 1000)")
    parser.add_argument("--out", default=OUT, help="where results/ and figures/ go")
    parser.add_argument("--replot", action="store_true", help="redraw the figure from "
                        f"OUT/results/<name>.json, training nothing ({', '.join(FIGURES)})")
    args = parser.parse_args()
    OUT = args.out
    if args.replot:
        return replot(FIGURES if args.experiment == "all" else [args.experiment])
    if args.steps:
        OVERRIDES.update(steps=args.steps, log_every=max(1, min(50, args.steps // 4)),
                         sample_every=args.steps, checkpoint_every=args.steps)
    for name in EXPERIMENTS if args.experiment == "all" else [args.experiment]:
        print(json.dumps({name: EXPERIMENTS[name]()}, indent=1), flush=True)
    return 0


def replot(names):
    for name in names:
        with open(f"{OUT}/results/{name}.json") as f:
            results = json.load(f)
        if name not in FIGURES or not all("points" in r for r in results.values()):
            print(f"{name}: {OUT}/results/{name}.json does not hold what the figure draws; "
                  "rerun the experiment", file=sys.stderr)
            return 1
        save_figure(name, FIGURES[name](results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
