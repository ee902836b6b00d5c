"""The WAE paper's comparison (Tolstikhin et al. 2018, Table 1 and Figs. 3-4), measured on digits:
VAE vs WAE-MMD vs WAE-GAN on the same networks, data, batch and budget.

    python experiments/autoencoders.py                          # 1400 steps (100 epochs) each
    python experiments/autoencoders.py --steps 200 --seeds 0    # a quick check

Each model trains with the package's defaults for its family (the official MNIST setting: d_z 8,
lambda 10, Adam(1e-3, beta1 0.5), Adam(5e-4) for WAE-GAN's adversary, batch 100, the official
learning-rate decay at epochs 30 and 50) on ``digits:train`` (1437 images at 16x16, so an epoch is
14 steps) with the networks 16 times narrower than the official 1024 filters, so that it runs on a
CPU. The VAE is run with the KL weight of the ELBO under this cost (1, the package's default) and
with two smaller ones (at this image size the first collapses its posterior). Every model is trained
under two seeds; the run directories go under ``runs/experiments/autoencoders/`` (fresh every time).
Every run is measured by ``wgan_tf.evaluate.evaluate`` (what ``wgan-tf evaluate RUN`` writes): the
digits classifier's Fréchet distance of 1000 samples to 1000 training digits, the sharpness of
samples and of real digits, and the reconstruction error over 1000 draws of the 360 held-out
digits (``digits:test``); and, to compare with the "true data" row (the 360 held-out digits against the
same training digits), the Fréchet distance of 360 samples (``classifier_fd_360``). Writes
``docs/results/autoencoders.json`` and ``docs/figures/autoencoders.png`` (per model, first seed:
held-out digits above their reconstructions, and random samples); docs/RESULTS.md quotes them.
"""
import argparse
import json
import os
import shutil
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from wgan_tf import callbacks, data, evaluate, metrics, pictures, rng  # noqa: E402
from wgan_tf.config import TrainConfig  # noqa: E402
from wgan_tf.rundir import load_saved  # noqa: E402
from wgan_tf.train import train  # noqa: E402

RUNS = "runs/experiments/autoencoders"
NUM = 1000
MODELS = {"VAE": dict(model="vae"),
          "VAE, KL weight 0.1": dict(model="vae", penalty_weight=0.1),
          "VAE, KL weight 0.01": dict(model="vae", penalty_weight=0.01),
          "WAE-MMD": dict(model="wae", penalty="mmd"),
          "WAE-GAN": dict(model="wae", penalty="gan")}
SEEDS = (0, 1)
MEASURES = ("classifier_fd", "classifier_fd_360", "sharpness", "reconstruction")
SETTINGS = dict(dataset="digits:train", image_size=16, channels=1, filters=64, steps=1400,
                log_every=100, sample_every=700, checkpoint_every=700, jit_compile="off", seed=0)
# The lecture's table: CelebA 64x64, FID / sharpness (Tolstikhin et al. 2018, Table 1).
LECTURE = {"VAE": (63, 3e-3), "WAE-MMD": (55, 6e-3), "WAE-GAN": (42, 6e-3), "true data": (2, 2e-2)}


def run(label, seed, out_runs, **overrides):
    config = TrainConfig(**{**SETTINGS, **MODELS[label], **overrides, "seed": seed})
    run_dir = os.path.join(out_runs, f"{label.lower().replace(', ', '-').replace(' ', '-')}"
                                     f"-seed{seed}")
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.time()
    train(config, run_dir, progress=False)
    seconds = time.time() - start
    as_in_a_fresh_process()
    result = evaluate.evaluate(run_dir, num=NUM, seed=0)
    samples = evaluate.generated_samples(load_saved(run_dir, "decoder"), len(builtin_split("test")))
    result["classifier_fd_360"] = metrics.classifier_fd(training_digits(), samples, classifier())
    result.update(train_seconds=round(seconds, 1), config=json.loads(config.to_json()))
    print(f"{label}, seed {seed}: " + ", ".join(f"{k} {result[k]:.4g}" for k in MEASURES)
          + f" ({seconds:.0f} s)", flush=True)
    return run_dir, result


def as_in_a_fresh_process():
    """Forget the global TensorFlow seed that training set (``keras.utils.set_random_seed``):
    ``tf.data``'s seeded shuffle, which draws the real digits, also depends on it, and
    ``wgan-tf evaluate`` runs in a process where it is unset."""
    tf.random.set_seed(None)


def classifier():
    return metrics.digits_classifier(SETTINGS["image_size"], SETTINGS["channels"])


def training_digits():
    """The 1000 training digits every sample set is compared with (evaluate's, under seed 0)."""
    config = dict(image_size=SETTINGS["image_size"], channels=SETTINGS["channels"])
    return evaluate.real_samples("digits:train", config, NUM, seed=0)


def true_data():
    """The table's "true data" row: the held-out digits measured as samples are."""
    test_digits = builtin_split("test")
    as_in_a_fresh_process()
    return {"classifier_fd_360": metrics.classifier_fd(training_digits(), test_digits,
                                                       classifier()),
            "sharpness": float(metrics.sharpness(test_digits).mean()),
            "sharpness_train": float(metrics.sharpness(training_digits()).mean()),
            "num_samples": len(test_digits)}


def summarise(runs):
    """Per model and measure: the mean over seeds and the values."""
    return {label: {k: {"mean": float(np.mean([r[k] for r in by_seed.values()])),
                        "values": [by_seed[s][k] for s in sorted(by_seed)]} for k in MEASURES}
            for label, by_seed in runs.items()}


def builtin_split(split):
    images, _ = data.builtin.digits_array(SETTINGS["image_size"], SETTINGS["channels"], split)
    return data.builtin.scale_to_unit(images).numpy()


def figure(run_dirs, path, columns=8):
    """Per model: two rows of held-out digits (the same for every model, drawn at random), each
    above its reconstructions, and 32 samples from fixed latents."""
    test = builtin_split("test")
    real = test[np.random.default_rng(0).permutation(len(test))[:2 * columns]]
    latent = rng.normal([4 * columns, 8], 1234, stream=3, counter=1)
    fig, axes = plt.subplots(len(run_dirs), 2, figsize=(9, 2.6 * len(run_dirs)), squeeze=False)
    for row, (label, run_dir) in enumerate(run_dirs.items()):
        encoder, decoder = load_saved(run_dir, "encoder"), load_saved(run_dir, "decoder")
        recon = evaluate.reconstructions(encoder, decoder, real)
        pairs = callbacks.pairs_of_rows(real, recon, columns)
        samples = pictures.to_uint8(np.clip(decoder(latent, training=False).numpy(), -1, 1))
        for ax, images, title in ((axes[row, 0], pairs, "held-out digits / reconstructions"),
                                  (axes[row, 1], samples, "samples")):
            ax.imshow(pictures.grid(images, columns=columns)[..., 0], cmap="gray", vmin=0,
                      vmax=255)
            ax.set_title(f"{label}: {title}", fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=SETTINGS["steps"],
                        help="encoder/decoder updates per model (default %(default)s)")
    parser.add_argument("--filters", type=int, default=SETTINGS["filters"],
                        help="widest layer of the networks (default %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS,
                        help="training seeds per model (default %(default)s)")
    parser.add_argument("--out", default="docs", help="where results/ and figures/ go")
    parser.add_argument("--runs", default=RUNS, help="where the run directories go")
    args = parser.parse_args(argv)
    start = time.time()
    runs, run_dirs = {}, {}
    for label in MODELS:
        runs[label] = {}
        for seed in args.seeds:
            run_dir, runs[label][seed] = run(label, seed, args.runs, steps=args.steps,
                                             filters=args.filters)
            run_dirs.setdefault(label, run_dir)
    os.makedirs(os.path.join(args.out, "results"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "figures"), exist_ok=True)
    figure(run_dirs, os.path.join(args.out, "figures", "autoencoders.png"))
    summary = {"command": "python " + " ".join([sys.argv[0], *(argv or sys.argv[1:])]),
               "total_seconds": round(time.time() - start, 1), "lecture_celeba64": LECTURE,
               "summary": summarise(runs), "true_data": true_data(),
               "runs": {label: {str(s): r for s, r in by_seed.items()}
                        for label, by_seed in runs.items()}}
    with open(os.path.join(args.out, "results", "autoencoders.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"done in {summary['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
