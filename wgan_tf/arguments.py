"""The arguments of every ``wgan-tf`` command, importable without TensorFlow, so that ``--help``
answers at once and the CLI can quiet TensorFlow before anything imports it.

``COMMANDS`` maps each command to (the module whose ``run(args)`` runs it, one line of help, the
function that adds its arguments). Defaults come from ``wgan_tf.config`` where they are training
settings; ``None`` defaults are resolved there, per model, penalty and dataset.
"""
import argparse

from wgan_tf.config import (CLASS_WEIGHT_CRITIC, CLASS_WEIGHT_GENERATOR, COLLECTIVE_TIMEOUT,
                            CONDITIONINGS, CRITIC_NORMALIZATIONS, GENERATOR_CHOICES, PENALTIES,
                            PRECISIONS, RECIPES, TrainConfig)


def train(parser):
    d = TrainConfig.__dataclass_fields__
    a = parser.add_argument
    a("--recipe", default=d["recipe"].default, choices=tuple(RECIPES),
      help="a named group of defaults (flags given here win): paper (every default the papers', "
           "default) or fast (the most quality per CPU-minute on photographs: "
           + ", ".join(f"{k.replace('_', '-')} {v}" for k, v in RECIPES["fast"].items()) + ")")
    a("--model", default=d["model"].default, choices=tuple(PENALTIES),
      help="wgan (the paper, default), gan (its standard-GAN baseline, -log D trick), wae "
           "(Wasserstein auto-encoder) or vae (its VAE baseline)")
    a("--dataset", default=d["dataset"].default,
      help="digits (or digits:train, digits:test), toy:8gaussians, toy:25gaussians, "
           "toy:swissroll, folder:PATH, "
           "lsun-lmdb:PATH or a TFDS name like lsun/bedroom (default %(default)s)")
    a("--arch", default=d["arch"].default,
      help="generator: dcgan, dcgan-nobn or mlp (default %(default)s)")
    a("--penalty", default=None,
      help="wgan: clip (Algorithm 1, default) or gp (WGAN-GP); wae: mmd (default) or gan; "
           "gan, vae: none")
    a("--image-size", type=int, default=d["image_size"].default)
    a("--channels", type=int, default=d["channels"].default)
    a("--latent-dim", type=int, default=None,
      help="default 100; 2 on toy datasets; 8 for wae and vae")
    a("--filters", type=int, default=None,
      help="DCGAN base filters (default 64); for wae and vae the widest layer's (default 1024, "
           "the official setting; a few dozen train on a CPU)")
    a("--batch-size", type=int, default=None,
      help="global batch, split over all devices (default 64; 256 on toy datasets; 100 for wae "
           "and vae)")
    a("--n-critic", type=int, default=None,
      help="critic iterations per generator iteration (default 5; 1 with --model gan)")
    a("--clip-value", type=float, default=d["clip_value"].default)
    a("--gp-weight", type=float, default=None,
      help="gradient-penalty weight lambda (default 10; 0.1 on toy datasets, as the WGAN-GP toy "
           "code)")
    a("--penalty-every", type=int, default=None, metavar="K",
      help="gp: compute the penalty on every K-th critic iteration only, weighted K x "
           "(lazy regularisation; default 1)")
    a("--gp-target", type=float, default=None,
      help="gp: the gradient norm the penalty pulls towards (default 1, WGAN-GP; 0: the "
           "zero-centred penalty)")
    a("--drift", type=float, default=None,
      help="wgan: ProGAN's drift term, DRIFT x E[critic(x)^2] on real images (default 0)")
    a("--critic-normalization", default=None, choices=CRITIC_NORMALIZATIONS,
      help="the DCGAN critic's normalisation (default: layer with gp, batch otherwise)")
    a("--critic-boost", action=argparse.BooleanOptionalAction, default=None,
      help="100 critic iterations for the first 25 generator iterations and every 500th "
           "(default: on with --penalty clip, off with gp)")
    a("--optimizer", default=None, choices=("rmsprop", "adam"),
      help="both players' optimizer (default: the paper's: RMSProp with clipping, Adam otherwise)")
    a("--learning-rate", type=float, default=None, help="default: the paper's")
    a("--generator-learning-rate", type=float, default=None,
      help="GANs: the generator's own learning rate (two time-scale updates; default: "
           "--learning-rate)")
    a("--beta-1", type=float, default=None, help="Adam's beta1 (default: the paper's)")
    a("--beta-2", type=float, default=None, help="Adam's beta2 (default: the paper's)")
    a("--penalty-weight", type=float, default=None,
      help="wae, vae: lambda, the latent penalty's weight (default 10 for wae, 1 (the KL) for "
           "vae)")
    a("--adversary-learning-rate", type=float, default=None,
      help="wae --penalty gan: the latent adversary's Adam learning rate (default 5e-4)")
    a("--epoch-steps", type=int, default=None,
      help="wae, vae: steps per epoch of the learning-rate schedule (halved at epoch 30, /5 at "
           "50, /10 at 100); default: dataset size // batch size where known (digits), else 0, "
           "a constant rate")
    a("--precision", default=None, choices=PRECISIONS,
      help="compute in float32 (the paper's, default), bfloat16 or float16 (with loss scaling); "
           "variables, losses and metrics stay float32")
    a("--ema", type=float, default=None, metavar="DECAY",
      help="keep an exponential moving average of the generator's weights (e.g. 0.999, its "
           "half-life ramped up to at most 2%% of the iterations so far; batch-norm statistics "
           "recomputed for it) and sample, evaluate and export it; --recipe fast: 0.973, a "
           "half-life of 25 iterations; 0 or default: none (the paper's)")
    a("--augment", default=None, metavar="POLICY",
      help="DiffAugment for small datasets: a comma-separated list of color, translation, "
           "cutout applied to every image the critic sees; default: none (the paper's)")
    a("--lookahead", type=int, default=None, metavar="K",
      help="GANs: every K generator iterations both players' weights go halfway back to slow "
           "copies of themselves (Lookahead; damps the players' rotation); 0 or default: none "
           "(the paper's)")
    a("--conditional", action="store_true", default=None,
      help="a conditional model on labelled data (digits, folder:PATH with class subfolders, "
           "TFDS with a label): a class per image, class-conditional batch norm in the generator, "
           "a critic conditioned by --conditioning")
    a("--conditioning", default=None, choices=CONDITIONINGS,
      help="--conditional: how the critic takes the class: projection (the class inside the "
           "score, Miyato & Koyama 2018; default) or acgan (the WGAN-GP paper's auxiliary "
           "classifier)")
    a("--class-weight", type=float, default=None,
      help="--conditioning acgan: the auxiliary classifier's cross-entropy weight in the critic's "
           f"loss, on real images (default {CLASS_WEIGHT_CRITIC}, the paper's)")
    a("--generated-class-weight", type=float, default=None,
      help="--conditioning acgan: its weight in the generator's loss, on the classes asked for "
           f"(default {CLASS_WEIGHT_GENERATOR}, the paper's)")
    a("--eval-every", type=int, default=d["eval_every"].default, metavar="N",
      help="every N steps, measure the samples (classifier FD and KID where the dataset has a "
           "classifier, else sliced Wasserstein) into metrics.csv and TensorBoard; default 0: "
           "never")
    a("--eval-num", type=int, default=d["eval_num"].default, metavar="N",
      help="samples (generated and real) per --eval-every measurement (default %(default)s)")
    a("--steps", type=int, default=d["steps"].default,
      help="generator iterations (encoder/decoder updates for wae and vae) to reach "
           "(default %(default)s)")
    a("--seed", type=int, default=d["seed"].default)
    a("--devices", type=int, default=d["devices"].default,
      help="replicas: GPUs, or logical CPU devices where there is no GPU; per worker under "
           "TF_CONFIG (a multi-worker job: one per worker on CPUs)")
    a("--collective-timeout", type=float, default=COLLECTIVE_TIMEOUT, metavar="SECONDS",
      help="multi-worker jobs (TF_CONFIG): how long a worker waits for the others in a "
           "collective before it stops with an error (default %(default)s)")
    a("--log-every", type=int, default=d["log_every"].default, help="metrics.csv row period")
    a("--sample-every", type=int, default=d["sample_every"].default)
    a("--checkpoint-every", type=int, default=d["checkpoint_every"].default)
    a("--steps-per-execution", type=int, default=d["steps_per_execution"].default, metavar="K",
      help="generator iterations per call of the training step, so that Keras's per-step work "
           "(callbacks, logs) is paid once per K; a signal still stops within one iteration; "
           "must divide --log-every (default %(default)s)")
    a("--jit-compile", default=d["jit_compile"].default, choices=("auto", "on", "off"),
      help="XLA for the training step (auto: where it was measured faster, and not in a "
           "multi-worker job)")
    a("--data-dir", default=None, help="TFDS data directory")
    a("--data-cache", default=None, metavar="DIR",
      help="folder/LMDB sources: decode every image once into DIR (for small sets)")
    a("--out", required=True, help="run directory; an existing one is resumed")
    a("--quiet", action="store_true", help="no progress bar")


def export(parser):
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="training run with generator.keras (decoder.keras and encoder.keras "
                             "for wae and vae)")
    parser.add_argument("--out", default="saved_models/wgan",
                        help="model base path; the version goes to OUT/<version>/ "
                             "(default: %(default)s)")
    parser.add_argument("--version", type=int, default=None,
                        help="version number (default: one more than the highest present)")
    _generator_choice(parser, "export")


def _generator_choice(parser, verb):
    parser.add_argument("--generator", default=None, choices=GENERATOR_CHOICES,
                        help=f"GANs: {verb} the generator's EMA (ema) or the raw generator (raw); "
                             "default: the EMA where the run keeps one (--ema), else the raw one")


def serve(parser):
    a = parser.add_argument
    a("--model-base-path", default=None,
      help="one model: the directory of its version subdirectories (default: saved_models/wgan "
           "unless --model-config-file is given)")
    a("--model-name", default="wgan", help="name clients ask for (default: %(default)s)")
    a("--model-config-file", default=None, metavar="FILE",
      help="several models: TF Serving's ModelServerConfig text proto (serving/models.config), "
           "instead of --model-base-path and --model-name")
    a("--model-config-file-poll-wait-seconds", type=float, default=0.0, metavar="SECONDS",
      help="re-read --model-config-file this often and apply it when it changed (default: "
           "%(default)s, never; ModelService.HandleReloadConfigRequest reloads at any time)")
    a("--port", type=int, default=8500, help="gRPC port (default: %(default)s)")
    a("--rest-port", type=int, default=None,
      help="also answer TF Serving's REST API on this port (default: off)")
    a("--enable-batching", action="store_true",
      help="merge concurrent requests into batches (TF Serving's request batching)")
    a("--batching-parameters-file", default=None, metavar="FILE",
      help="TF Serving's BatchingParameters text proto (serving/batching.config; default: TF "
           "Serving's defaults)")
    a("--monitoring-config-file", default=None, metavar="FILE",
      help="TF Serving's MonitoringConfig text proto (serving/monitoring.config): Prometheus "
           "metrics on the REST port")
    a("--rest-max-body-bytes", type=int, default=None,
      help="largest REST request body (default: room for --max-batch samples of the served "
           "model's largest input, at least 1 MiB)")
    a("--rest-timeout", type=float, default=30.0,
      help="seconds a REST client gets to send a request's headers, and again its body "
           "(default: %(default)s)")
    a("--rest-threads", type=int, default=16,
      help="REST connections served at once (default: %(default)s)")
    a("--rest-max-connections", type=int, default=64,
      help="open REST connections, served or waiting for a thread; more are answered 503 with "
           "Retry-After (default: %(default)s)")
    a("--max-batch", type=int, default=1024,
      help="most samples one request may ask for (default: %(default)s)")
    a("--threads", type=int, default=64,
      help="gRPC requests served at once; with batching, requests wait for their batch on these "
           "threads (default: %(default)s)")
    a("--max-concurrent-rpcs", type=int, default=256,
      help="gRPC requests in the server, served or waiting for a thread; more are refused with "
           "RESOURCE_EXHAUSTED (default: %(default)s)")
    a("--poll-seconds", type=float, default=1.0,
      help="how often to look for new versions (default: %(default)s)")
    a("--grace", type=float, default=5.0,
      help="seconds in-flight requests get at shutdown (default: %(default)s)")


def generate(parser):
    a = parser.add_argument
    a("--server", default="localhost:8500", help="HOST:PORT (default: %(default)s)")
    a("--num", type=int, default=64, help="number of images (default: %(default)s)")
    a("--seed", type=int, default=0,
      help="seed of the first image; image i has seed SEED+i (default: %(default)s)")
    a("--out", required=True,
      help="FILE.png for a grid, or DIR/ (trailing slash) for one PNG per image")
    a("--model-name", default="wgan", help="model to ask (default: %(default)s)")
    a("--reconstruct", nargs="+", default=None, metavar="IN.png",
      help="auto-encoders: reconstruct these images instead (each file one image, resized and "
           "centre-cropped to the model's size); --out FILE.png gets the images in a row above "
           "their reconstructions")
    a("--label", default=None, metavar="L",
      help="conditional models: the class, by index or name, of every image; 'all' makes one "
           "row per class (--num images each, the same seeds in every row)")
    a("--truncation", type=float, default=None, metavar="PSI",
      help="draw the latents from the normal truncated to [-PSI, PSI] (coordinates outside are "
           "resampled): more typical images, less variety; 0 is the mean latent, 6 or more no "
           "truncation")
    a("--interpolate", type=int, nargs=2, default=None, metavar=("SEED_A", "SEED_B"),
      help="instead of --num images, a strip of --steps images along the spherical path from "
           "SEED_A's latent to SEED_B's (a row per class with --label all); --out FILE.png")
    a("--steps", type=int, default=None,
      help="images in an --interpolate strip, both ends included (default: 8)")
    a("--timeout", type=float, default=60.0, help="seconds per request (default: %(default)s)")
    a("--wait", type=float, default=0.0,
      help="wait up to this many seconds for a server that is still starting "
           "(default: %(default)s)")


def evaluate(parser):
    a = parser.add_argument
    a("run_dir", metavar="RUN_DIR", help="a training run directory")
    a("--dataset", default=None, help="dataset spec to compare with (default: the run's)")
    a("--out", required=True, help="JSON file to write")
    a("--num", type=int, default=2000,
      help="generated and real samples each (default %(default)s)")
    a("--seed", type=int, default=0, help="seed of the latents and the real draw")
    a("--inception-weights", default=None, metavar="PATH",
      help="InceptionV3 Keras weights (.h5) for FID and KID; the full file also gives the "
           "Inception Score, the no-top one does not; never downloaded")
    a("--reconstruction-dataset", default=None, metavar="SPEC",
      help="auto-encoders: the images whose reconstruction error is measured (default: the "
           "run's held-out images where known, digits:test for digits:train, else the run's "
           "dataset)")
    a("--cache-dir", default=None,
      help="where the datasets' classifiers and the real images' reference features are kept "
           "(default $XDG_CACHE_HOME/wgan-tf or ~/.cache/wgan-tf)")
    a("--data-dir", default=None, help="TFDS data directory")
    _generator_choice(parser, "evaluate")


def explain(parser):
    a = parser.add_argument
    a("run_dir", metavar="RUN_DIR", help="a training run directory")
    a("--dataset", default=None, help="dataset spec of the real images (default: the run's)")
    a("--out", required=True, help="PNG file to write")
    a("--num", type=int, default=8, help="images per row (default %(default)s)")
    a("--seed", type=int, default=0, help="seed of the latents and the real draw")
    a("--data-dir", default=None, help="TFDS data directory")
    _generator_choice(parser, "explain the samples of")


COMMANDS = {
    "train": ("wgan_tf.train", "train a model; re-running with the same --out resumes", train),
    "export": ("wgan_tf.export", "export a run's generator as a TF Serving SavedModel version",
               export),
    "serve": ("wgan_tf.serving.server", "serve exported models over TF Serving's gRPC API",
              serve),
    "generate": ("wgan_tf.serving.generate", "ask a running server for images, write PNGs",
                 generate),
    "evaluate": ("wgan_tf.evaluate", "measure a run's samples against its dataset, write JSON",
                 evaluate),
    "explain": ("wgan_tf.explain", "saliency and Grad-CAM++ maps of a run's critic, write a PNG",
                explain),
}
