"""Why the generator EMA lagged the raw generator, measured: several averages of one run's generator
kept side by side, each measured (classifier FD and KID, 2,000 samples) at the same iterations as
the raw generator.

    python experiments/ema.py [--setting gan32] [--steps 1000] [--eval-every 250]

The averages differ in two things, the suspects of issue 21:

- the decay schedule: the older warm-up min(decay, (1 + t) / (10 + t)) against StyleGAN2-ADA's
  ramp-up (half-life at most ``rampup`` x the iterations so far), and fixed decays;
- batch norm: the raw generator's moving statistics averaged with the weights (the older rule)
  against *standing statistics*, recomputed for the averaged weights from fixed latents (BigGAN).

One run per setting (``SETTINGS``: ``wgan-tf train`` flags), in this process, the averages updated
after every generator iteration by a callback; results in docs/results/ema-SETTING.json and the
figure docs/figures/ema-SETTING.png. Not resumable: minutes on 2 CPU cores.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from photos import DATA, flags as photo_flags  # noqa: E402

# name -> the experiment's own flags on top of photos.py's setting of the same name.
SETTINGS = {
    "gan32": ("gan", []),
    "wgan-gp32": ("wgan-gp", []),
    "fast32": ("wgan-gp", ["--recipe", "fast"]),
}
# name -> (label, decay rule, statistics): the averages kept side by side.
AVERAGES = {
    "warmup-averaged": ("warm-up (1+t)/(10+t), 0.999, averaged statistics", ("warmup", 0.999),
                        "averaged"),
    "warmup-standing": ("warm-up (1+t)/(10+t), 0.999, standing statistics", ("warmup", 0.999),
                        "standing"),
    "rampup-standing": ("ramp-up 5 %, 0.999, standing statistics", ("rampup", 0.999, 0.05),
                        "standing"),
    "rampup10-standing": ("ramp-up 10 %, 0.999, standing statistics", ("rampup", 0.999, 0.10),
                          "standing"),
    "rampup2-standing": ("ramp-up 2 %, 0.999, standing statistics", ("rampup", 0.999, 0.02),
                         "standing"),
}


def decay(rule, t):
    import math

    if rule[0] == "warmup":
        return min(rule[1], (1 + t) / (10 + t))
    half = min(math.log(0.5) / math.log(rule[1]), rule[2] * t)
    return 0.5 ** (1 / max(half, 1e-8))


def averages_callback(quality, every, results, grid_dir):
    import keras
    import tensorflow as tf

    from wgan_tf import ema, pictures
    from wgan_tf.quality import generated_samples

    class Averages(keras.callbacks.Callback):
        """Keeps ``AVERAGES`` of the model's generator and measures them with the raw one."""

        def on_train_begin(self, logs=None):
            if hasattr(self, "networks"):
                return
            self.networks = {name: ema.average_network(self.model.generator)
                             for name in AVERAGES}
            self.decay = tf.Variable(0.0)
            self.step = {name: tf.function(lambda a=a, s=(s == "averaged"): ema.update(
                a, self.model.generator, self.decay, statistics=s))
                for name, a, s in ((n, self.networks[n], AVERAGES[n][2]) for n in AVERAGES)}

        def on_train_batch_end(self, batch, logs=None):
            t = int(self.model.step_counter.numpy())
            for name, (_, rule, _) in AVERAGES.items():
                self.decay.assign(decay(rule, t))
                self.step[name]()

        def on_epoch_end(self, epoch, logs=None):
            t = int(self.model.step_counter.numpy())
            if t % every:
                return
            row = {"raw": quality.measure(self.model.generator)}
            grids = {"raw": self.model.generator}
            for name, network in self.networks.items():
                if AVERAGES[name][2] == "standing":
                    ema.standing_statistics(network)
                row[name] = quality.measure(network)
                grids[name] = network
            os.makedirs(grid_dir, exist_ok=True)
            for name, network in grids.items():  # the same 32 latents for every network
                images = generated_samples(network, 32, seed=1)
                pictures.save_png(pictures.grid(pictures.to_uint8(images)),
                                  os.path.join(grid_dir, f"iter_{t:06d}_{name}.png"))
            results[t] = row
            print(t, {k: round(v["classifier_fd"], 1) for k, v in row.items()}, flush=True)

    return Averages()


def run(setting, steps, every, runs, data=DATA, smoke=False):
    from wgan_tf import quality, train
    from wgan_tf.cli import build_parser

    base, own = SETTINGS[setting]
    run_dir = os.path.join(runs, setting)
    if os.path.exists(run_dir):
        raise SystemExit(f"{run_dir} exists: this experiment does not resume; remove it")
    args = build_parser().parse_args(["train", *photo_flags(base, data, smoke), *own,
                                      "--eval-every", "0", "--steps",
                                      str(steps), "--log-every", str(every), "--out", run_dir])
    config = train.config_from_args(args)
    measure = quality.Quality(config.dataset, config.image_size, config.channels,
                              32 if smoke else 2000, config.seed)
    results = {}
    train.train(config, run_dir, progress=False,
                extra_callbacks=[averages_callback(measure, every, results,
                                                   os.path.join(run_dir, 'ema-grids'))],
                cache=os.path.join(runs, "data-cache"))
    return config, results


def figure(setting, results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    iterations = sorted(results)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(iterations, [results[t]["raw"]["classifier_fd"] for t in iterations], "k-o",
            label="raw generator")
    for name, (label, _, _) in AVERAGES.items():
        ax.plot(iterations, [results[t][name]["classifier_fd"] for t in iterations], "--.",
                label=f"EMA: {label}")
    ax.set_xlabel("generator iterations")
    ax.set_ylabel("classifier FD (lower is better)")
    ax.set_title(f"Generator EMA variants, {setting} (flowers)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setting", choices=SETTINGS, default="gan32")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--runs", default="runs/ema")
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--out", default="docs")
    parser.add_argument("--smoke", action="store_true",
                        help="end to end in seconds (16x16, tiny networks, 4 iterations)")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.eval_every = 4, 2
    config, results = run(args.setting, args.steps, args.eval_every, args.runs, args.data,
                          args.smoke)
    path = os.path.join(args.out, "results", f"ema-{args.setting}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"setting": args.setting, "averages": {k: v[0] for k, v in AVERAGES.items()},
                   "results": {str(t): r for t, r in sorted(results.items())}}, f, indent=1)
    print(path)
    figure(args.setting, results, os.path.join(args.out, "figures", f"ema-{args.setting}.png"))


if __name__ == "__main__":
    main()
