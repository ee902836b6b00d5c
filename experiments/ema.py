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

    python experiments/ema.py --diagnose RUN_DIR ...
    python experiments/ema.py --continue RUN_DIR --from ITER --steps N [--anneal] [--lookahead K]
    python experiments/ema.py --plot-continued docs/results/ema-continue-*.json

``--diagnose``: where a finished run's EMA stands on the line through its raw generator
(``diagnose``). ``--continue``: the run continued from its checkpoint at ITER in a copy (the same
run, where the code is the one that made it), with averages of fixed half-lives beside its own,
all measured every ``--eval-every`` iterations into docs/results/ema-continue-NAME.json; with
``--anneal`` (``anneal_callback``) or ``--lookahead K`` (the package's, switched on at ITER) the
continuation trains differently, so several continuations from one checkpoint compare ways of
ending a run. ``--plot-continued`` draws such results side by side
(docs/figures/ema-continued.png).
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
# "recipes:NAME": experiments/recipes.py's recipe NAME, flags and all (64x64).
SETTINGS = {
    "gan32": ("gan", []),
    "wgan-gp32": ("wgan-gp", []),
    "fast32": ("wgan-gp", ["--recipe", "fast"]),
    "fast64": ("recipes:lazy-augment", []),
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
    "rampup2-hl25-standing": ("ramp-up 2 %, half-life at most 25 (0.973), standing statistics",
                              ("rampup", 0.5 ** (1 / 25), 0.02), "standing"),
    "rampup2-hl10-standing": ("ramp-up 2 %, half-life at most 10 (0.933), standing statistics",
                              ("rampup", 0.5 ** (1 / 10), 0.02), "standing"),
    "raw-standing": ("no average: the raw weights, standing statistics", ("copy",), "standing"),
}
# The averages each setting keeps (default: the first five, the older settings' own).
SETTING_AVERAGES = {"fast64": ("rampup2-standing", "rampup2-hl25-standing",
                               "rampup2-hl10-standing", "raw-standing")}


def averages_of(setting):
    return SETTING_AVERAGES.get(setting, tuple(AVERAGES)[:5])


def decay(rule, t):
    import math

    if rule[0] == "copy":
        return 0.0
    if rule[0] == "fixed":
        return rule[1]
    if rule[0] == "warmup":
        return min(rule[1], (1 + t) / (10 + t))
    half = min(math.log(0.5) / math.log(rule[1]), rule[2] * t)
    return 0.5 ** (1 / max(half, 1e-8))


# --continue: the half-lives (generator iterations) of the fixed-decay averages kept beside the
# run's own.
HALF_LIVES = (25, 100, 400)


def anneal_callback(start, steps):
    """``--anneal`` (an experiment option, not the package's): both players' learning rates fall
    linearly from their values at iteration ``start`` to zero at ``steps``."""
    import keras

    class Anneal(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if hasattr(self, "rates"):  # fit is called again after a partial period
                return
            optimizers = (self.model.critic_optimizer, self.model.generator_optimizer)
            self.rates = [(o.learning_rate, float(o.learning_rate.numpy())) for o in optimizers]

        def on_train_batch_begin(self, batch, logs=None):
            done = int(self.model.step_counter.numpy())
            for variable, rate in self.rates:
                variable.assign(rate * max(0.0, (steps - done) / (steps - start)))

    return Anneal()


def run_name(base, anneal=False, lookahead=0, tag=None):
    """A run's (and its results') name: BASE[-anneal][-lookaheadK][-TAG]."""
    return (base + ("-anneal" if anneal else "") + (f"-lookahead{lookahead}" if lookahead else "")
            + (f"-{tag}" if tag else ""))


def continued_name(run_dir, start, anneal=False, lookahead=0, tag=None):
    """The name of ``--continue``'s copy and results: RUN-from-START[-anneal][-lookaheadK][-TAG]."""
    return run_name(f"{os.path.basename(os.path.normpath(run_dir))}-from-{start}", anneal,
                    lookahead, tag)


def continue_run(run_dir, start, steps, every, runs, name, smoke=False, half_lives=HALF_LIVES,
                 anneal=False, lookahead=0):
    """Continues ``run_dir`` from its checkpoint at ``start`` in a copy, RUNS/``name``, to
    ``steps``, with averages of ``half_lives`` (see the docstring), annealed learning rates
    (``anneal``), or the package's Lookahead switched on at ``start`` (``lookahead``);
    {iteration: {network: measures}}."""
    import shutil

    from wgan_tf import quality, train
    from wgan_tf.config import TrainConfig

    copy = os.path.join(runs, name)
    if os.path.exists(copy):
        raise SystemExit(f"{copy} exists: this experiment does not resume; remove it")
    os.makedirs(os.path.join(copy, "checkpoints"))
    shutil.copy2(os.path.join(run_dir, "config.json"), copy)
    for suffix in (".index", ".data-00000-of-00001"):
        source = os.path.join(run_dir, "checkpoints", f"ckpt-{start}{suffix}")
        if not os.path.exists(source):
            raise SystemExit(f"{run_dir} has no checkpoint at iteration {start}")
        shutil.copy2(source, os.path.join(copy, "checkpoints"))
    with open(os.path.join(copy, "checkpoints", "checkpoint"), "w") as f:
        f.write(f'model_checkpoint_path: "ckpt-{start}"\n')
    with open(os.path.join(copy, "config.json")) as f:
        config = TrainConfig.from_json(f.read())
    config.steps = steps
    # The package's --lookahead, switched on at this resume (wgan_tf.lookahead).
    config.lookahead = lookahead or config.lookahead
    classes = len(config.class_names) if config.conditional else None
    measure = quality.Quality(config.dataset, config.image_size, config.channels,
                              32 if smoke else 2000, config.seed)
    results = {}
    averages = {f"half-life {h}": (("fixed", 0.5 ** (1 / h)), "standing") for h in half_lives}
    callback = averages_callback(measure, every, results, averages, config.precision, classes,
                                 config.seed, grid_dir=os.path.join(copy, "ema-grids"),
                                 run_ema=True)
    callbacks = [anneal_callback(start, steps), callback] if anneal else [callback]
    train.train(config, copy, progress=False, extra_callbacks=callbacks,
                cache=os.path.join(runs, "data-cache"))
    return results


def last_checkpoint(run_dir):
    """The iteration of ``run_dir``'s last checkpoint."""
    import tensorflow as tf

    path = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    if path is None:
        raise SystemExit(f"{run_dir} has no checkpoint")
    return int(path.rsplit("-", 1)[1])


def averages_callback(quality, every, results, averages, precision_name, classes=None, seed=0,
                      grid_dir=None, run_ema=False):
    """A callback keeping ``averages`` ({name: (decay rule, statistics)}, see ``AVERAGES``) of the
    model's generator from the iteration it starts at, and measuring them every ``every``
    iterations with the raw generator (and the run's own EMA with ``run_ema``) into ``results``;
    with ``grid_dir``, each network's samples of the same 32 latents too."""
    import keras
    import tensorflow as tf

    from wgan_tf import ema, pictures, precision
    from wgan_tf.quality import generated_samples

    class Averages(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if hasattr(self, "networks"):  # fit is called again after a partial period
                return
            with precision.policy(precision_name):  # as the model's own average is made
                self.networks = {name: ema.average_network(self.model.generator)
                                 for name in averages}
            self.decay = tf.Variable(0.0)
            self.step = {name: tf.function(lambda a=a, s=(s == "averaged"): ema.update(
                a, self.model.generator, self.decay, statistics=s))
                for name, a, s in ((n, self.networks[n], averages[n][1]) for n in averages)}

        def on_train_batch_end(self, batch, logs=None):
            t = int(self.model.step_counter.numpy())
            for name, (rule, _) in averages.items():
                self.decay.assign(decay(rule, t))
                self.step[name]()

        def on_epoch_end(self, epoch, logs=None):
            t = int(self.model.step_counter.numpy())
            if t % every:
                return
            grids = {"raw": self.model.generator}
            if run_ema:
                self.model.refresh_sampler()
                grids["the run's EMA"] = self.model.generator_ema
            for name, network in self.networks.items():
                if averages[name][1] == "standing":
                    ema.standing_statistics(network, seed, classes)
                grids[name] = network
            row = {name: quality.measure(network, classes) for name, network in grids.items()}
            if grid_dir:
                os.makedirs(grid_dir, exist_ok=True)
                for name, network in grids.items():  # the same 32 latents for every network
                    images = generated_samples(network, 32, seed=1, num_classes=classes)
                    pictures.save_png(pictures.grid(pictures.to_uint8(images)),
                                      os.path.join(grid_dir, f"iter_{t:06d}_{name}.png"))
            results[t] = row
            print(t, {k: round(v["classifier_fd"], 1) for k, v in row.items()}, flush=True)

    return Averages()


def run(setting, steps, every, runs, data=DATA, smoke=False, anneal=False, lookahead=0, tag=None):
    from wgan_tf import quality, train
    from wgan_tf.cli import build_parser

    base, own = SETTINGS[setting]
    if base.startswith("recipes:"):
        import recipes

        base_flags = recipes.flags(base[len("recipes:"):], data, smoke)
    else:
        base_flags = photo_flags(base, data, smoke)
    run_dir = os.path.join(runs, run_name(setting, anneal, lookahead, tag))
    if os.path.exists(run_dir):
        raise SystemExit(f"{run_dir} exists: this experiment does not resume; remove it")
    args = build_parser().parse_args(["train", *base_flags, *own,
                                      *(["--lookahead", str(lookahead)] if lookahead else []),
                                      "--eval-every", "0", "--steps",
                                      str(steps), "--log-every", str(every), "--out", run_dir])
    config = train.config_from_args(args)
    measure = quality.Quality(config.dataset, config.image_size, config.channels,
                              32 if smoke else 2000, config.seed)
    results = {}
    callbacks = [averages_callback(
        measure, every, results, {n: AVERAGES[n][1:] for n in averages_of(setting)},
        config.precision, grid_dir=os.path.join(run_dir, "ema-grids"))]
    if anneal:  # the learning rates from their values to zero over the whole run
        callbacks.insert(0, anneal_callback(0, steps))
    train.train(config, run_dir, progress=False, extra_callbacks=callbacks,
                cache=os.path.join(runs, "data-cache"))
    return config, results


# (name, position on the line EMA -> raw: 0 the EMA's weights, 1 the raw generator's), or "random".
POINTS = (("EMA", 0.0), ("halfway", 0.5), ("raw, standing statistics", 1.0),
          ("beyond raw (2 x raw - EMA)", 2.0), ("raw + random direction", "random"))


def diagnose(run_dir, num=2000, seed=0):
    """Classifier FD of the networks of ``POINTS`` for a finished run (see the docstring)."""
    import keras
    import numpy as np

    from wgan_tf import ema, quality
    from wgan_tf.rundir import load_saved, read_run_config

    config = read_run_config(run_dir)
    measure = quality.Quality(config["dataset"], config["image_size"], config["channels"], num,
                              seed)
    raw, average = load_saved(run_dir, "generator"), load_saved(run_dir, "generator_ema")
    classes = len(config["class_names"]) if config.get("conditional") else None
    rows = {"raw, its moving statistics": measure.measure(raw, classes)["classifier_fd"]}
    network = keras.models.clone_model(raw)
    random = np.random.default_rng(seed)
    for label, where in POINTS:
        for n, r, a in zip(network.weights, raw.weights, average.weights):
            r, a = r.numpy(), a.numpy()
            if not n.trainable:
                n.assign(r)  # statistics: replaced by standing statistics below
            elif where == "random":
                d = random.normal(size=r.shape)
                n.assign(r + d * (np.linalg.norm(r - a) / np.linalg.norm(d)))
            else:
                n.assign(a + where * (r - a))
        ema.standing_statistics(network, seed, classes)
        rows[label] = measure.measure(network, classes)["classifier_fd"]
        print(f"{run_dir}: {label}: FD {rows[label]:.1f}", flush=True)
    return rows


def _axes(figsize):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)


def _save(fig, ax, title, path):
    """FD against iterations, titled, with a legend, into ``path``."""
    import matplotlib.pyplot as plt

    ax.set_xlabel("generator iterations")
    ax.set_ylabel("classifier FD (lower is better)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(path)


def figure(setting, results, path):
    iterations = sorted(results)
    fig, ax = _axes((7, 4.5))
    ax.plot(iterations, [results[t]["raw"]["classifier_fd"] for t in iterations], "k-o",
            label="raw generator")
    for name in averages_of(setting):
        label = AVERAGES[name][0]
        ax.plot(iterations, [results[t][name]["classifier_fd"] for t in iterations], "--.",
                label=label if AVERAGES[name][1][0] == "copy" else f"EMA: {label}")
    _save(fig, ax, f"Generator EMA variants, {setting} (flowers)", path)


def continued_figure(paths, path, half_life=25):
    """The raw generator (solid) and its average of ``half_life`` (dashed) of each ``--continue``
    result in ``paths``, one colour per result."""
    fig, ax = _axes((7.5, 4.5))
    for k, source in enumerate(paths):
        with open(source) as f:
            data = json.load(f)
        results = {int(t): r for t, r in data["results"].items()}
        iterations = sorted(results)
        dynamics = ", ".join(["annealed"] * bool(data.get("anneal")) + [
            f"lookahead {data['lookahead']}"] * bool(data.get("lookahead"))) or "as trained"
        label = f"{os.path.basename(data['run'].rstrip('/'))} from {data['from']}, {dynamics}"
        colour = f"C{k}"
        ax.plot(iterations, [results[t]["raw"]["classifier_fd"] for t in iterations], "-o",
                color=colour, label=f"{label}: raw")
        name = f"half-life {half_life}"
        if all(name in results[t] for t in iterations):
            ax.plot(iterations, [results[t][name]["classifier_fd"] for t in iterations], "--.",
                    color=colour, alpha=0.7, label=f"{label}: EMA, half-life {half_life}")
    _save(fig, ax, "A run continued from one checkpoint in several ways (flowers)", path)


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
    parser.add_argument("--diagnose", nargs="+", metavar="RUN_DIR",
                        help="where a finished run's EMA stands (see the docstring) instead of "
                             "training")
    parser.add_argument("--continue", dest="continue_run", metavar="RUN_DIR",
                        help="continue RUN_DIR from --from to --steps with fixed-decay averages "
                             "(see the docstring) instead of a new run")
    parser.add_argument("--half-lives", type=int, nargs="+", default=list(HALF_LIVES),
                        help="--continue: the averages' half-lives in generator iterations "
                             "(default %(default)s)")
    parser.add_argument("--from", dest="start", type=int, help="--continue: the checkpoint's "
                        "iteration (with --smoke: the run's last)")
    parser.add_argument("--anneal", action="store_true",
                        help="both learning rates fall linearly to zero at --steps (from --from "
                             "with --continue)")
    parser.add_argument("--lookahead", type=int, default=0, metavar="K",
                        help="train with the package's --lookahead K (with --continue: from "
                             "--from on)")
    parser.add_argument("--tag", help="a suffix for the run's and its results' names")
    parser.add_argument("--plot-continued", nargs="+", metavar="JSON",
                        help="draw these --continue results' raw generators and averages of "
                             "half-life 25 into FIGURES/ema-continued.png")
    args = parser.parse_args()
    if args.lookahead < 0:
        parser.error(f"--lookahead must be >= 0, got {args.lookahead}")
    if args.continue_run:
        if args.start is None:
            parser.error("--continue needs --from ITERATION")
        # Named by --from as asked, so that a smoke run's results are where --plot-continued
        # looks for them.
        name = continued_name(args.continue_run, args.start, args.anneal, args.lookahead,
                              args.tag)
        if args.smoke:  # the run's last checkpoint (a smoke run has no long history), 4 more
            args.start = last_checkpoint(args.continue_run)
        steps = args.start + 4 if args.smoke else args.steps
        results = continue_run(args.continue_run, args.start, steps,
                               2 if args.smoke else args.eval_every, args.runs, name, args.smoke,
                               args.half_lives, args.anneal, args.lookahead)
        path = os.path.join(args.out, "results", f"ema-continue-{name}.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump({"run": args.continue_run, "from": args.start, "half_lives": args.half_lives,
                       "anneal": args.anneal, "lookahead": args.lookahead,
                       "results": {str(t): r for t, r in sorted(results.items())}}, f, indent=1)
        print(path)
        return
    if args.plot_continued:
        continued_figure(args.plot_continued, os.path.join(args.out, "figures",
                                                           "ema-continued.png"))
        return
    if args.diagnose:
        path = os.path.join(args.out, "results", "ema-diagnosis.json")
        results = {}
        if os.path.exists(path):
            with open(path) as f:
                results = json.load(f)
        for run_dir in args.diagnose:
            results[os.path.basename(os.path.normpath(run_dir))] = diagnose(
                run_dir, 32 if args.smoke else 2000)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(results, f, indent=1)
        print(path)
        return
    if args.smoke:
        args.steps, args.eval_every = 4, 2
    config, results = run(args.setting, args.steps, args.eval_every, args.runs, args.data,
                          args.smoke, args.anneal, args.lookahead, args.tag)
    name = run_name(args.setting, args.anneal, args.lookahead, args.tag)
    path = os.path.join(args.out, "results", f"ema-{name}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"setting": args.setting, "anneal": args.anneal, "lookahead": args.lookahead,
                   "averages": {k: AVERAGES[k][0] for k in averages_of(args.setting)},
                   "results": {str(t): r for t, r in sorted(results.items())}}, f, indent=1)
    print(path)
    figure(args.setting, results, os.path.join(args.out, "figures", f"ema-{name}.png"))


if __name__ == "__main__":
    main()
