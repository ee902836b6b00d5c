"""What the critic computes: the WGAN and WGAN-GP papers' analysis claims, with the package.

    python experiments/critic_claims.py parallel-lines        # WGAN Example 1 and Fig. 1
    python experiments/critic_claims.py optimal-critic        # WGAN Fig. 2
    python experiments/critic_claims.py value-surfaces        # WGAN-GP Fig. 1a
    python experiments/critic_claims.py gradient-norms        # WGAN-GP Fig. 1b
    python experiments/critic_claims.py random-architectures  # WGAN-GP Table 2, on digits
    python experiments/critic_claims.py all

Each writes ``docs/results/<name>.json`` (every value) and ``docs/figures/<name>.png``;
docs/RESULTS.md (sections 5-9) quotes them; ``--replot`` redraws a figure from its JSON. Critics
trained alone (the generator held fixed) use ``wgan_tf.probes.train_critic``; generators are
trained by ``WGAN(...).fit`` / ``GAN(...).fit``. Everything is seeded: a rerun gives the same
numbers up to floating-point noise of the CPU kernels.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import paper_claims  # noqa: E402  (experiments/ is the script's directory: shares save())
from wgan_tf import data, losses, metrics, models, probes, rng  # noqa: E402
from wgan_tf.gan import GAN
from wgan_tf.wgan import WGAN  # noqa: E402

SEED = 0
COLORS = {"clip": "tab:green", "gp": "tab:blue", "gan": "tab:red", "minimax": "tab:purple"}
LABELS = {"clip": "WGAN critic, clipping (c = 0.01)", "gp": "WGAN-GP critic",
          "gan": "GAN discriminator"}


def stream(batch, seed):
    """Endless tf.data batches ``batch(i)`` for i = 0, 1, ... (``batch`` draws from ``rng`` with
    counter i, so every stream is a pure function of its seed)."""
    return tf.data.Dataset.range(2**62).map(lambda i: batch(i, seed))


def save(name, results, figure):
    paper_claims.write_results(name, compact(results), indent=None)
    paper_claims.save_figure(name, figure)


def compact(values, digits=5):
    """``values`` with every float rounded to ``digits`` significant digits (the grids and curves
    are large; nothing here is measured more precisely)."""
    if isinstance(values, dict):
        return {k: compact(v, digits) for k, v in values.items()}
    if isinstance(values, (list, tuple)):
        return [compact(v, digits) for v in values]
    if isinstance(values, float) and np.isfinite(values):
        return float(f"{values:.{digits}g}")
    return values


# --- RESULTS.md 5. Parallel lines: WGAN Example 1 and Fig. 1 --------------------------------------

LINE_THETAS = (-1.0, -0.75, -0.5, -0.25, -0.1, -0.05, 0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)
LINE_BATCH = 256
LINE_UNITS = 128  # the package's MLP critic, 3 x 128 ReLU (the paper's toy critic has 512)
LINE_CRITIC_STEPS = 600
LINE_ITERATIONS = 300
LINE_LR = 0.01


def segment(theta, batch_size, seed):
    """Batches of P_theta, the uniform distribution on {theta} x [0, 1]."""
    def batch(i, seed):
        u = rng.uniform([batch_size], seed, 0, i)
        return tf.stack([tf.fill([batch_size], theta), u], axis=1)
    return stream(batch, seed)


class MinimaxGAN(GAN):
    """The standard GAN with Goodfellow et al.'s original (minimax) generator loss log(1 - D(G(z)))
    = -softplus(logit): the "minimax GAN" whose discriminator the WGAN paper's Fig. 2 shows
    saturating. (The package's GAN baseline uses the -log D trick instead.)"""
    generator_loss = staticmethod(losses.gan_minimax_generator_loss)


def line_critic_estimates():
    """Each critic trained alone against P_theta for every theta, and its estimate on 4096
    held-out points of each distribution."""
    real = next(iter(segment(0.0, 4096, 90))).numpy()
    estimates = {k: [] for k in ("clip", "gp", "gan")}
    for theta in LINE_THETAS:
        fake = next(iter(segment(theta, 4096, 91))).numpy()
        for key in estimates:
            keras.utils.set_random_seed(SEED)
            critic = models.mlp_critic(input_shape=(2,), units=LINE_UNITS)
            objective = "gan" if key == "gan" else "wasserstein"
            probes.train_critic(critic, segment(0.0, LINE_BATCH, 1), segment(theta, LINE_BATCH, 2),
                                LINE_CRITIC_STEPS, objective, key, seed=SEED)
            estimates[key].append(probes.estimate(critic, real, fake, objective))
        print(f"  theta {theta:+.2f}: " + ", ".join(f"{k} {v[-1]:.4f}"
                                                    for k, v in estimates.items()), flush=True)
    return estimates


class ThetaRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.theta, self.estimate = [], []

    def on_train_begin(self, logs=None):
        self.theta.append(self._theta())

    def on_train_batch_end(self, batch, logs=None):
        self.theta.append(self._theta())
        self.estimate.append(float(logs[self.model.ESTIMATE]))

    def _theta(self):
        return float(self.model.generator.get_layer("line").theta.numpy())


def line_trajectory(key, learning_rate):
    """g_theta trained from theta = 1 by ``fit`` with one objective; every objective gets n_critic 5
    and the critic boost (100 critic iterations for the first 25 generator iterations), so its
    critic is good before the generator moves, and plain SGD, so theta's step is its gradient."""
    keras.utils.set_random_seed(SEED)
    generator = models.parallel_line_generator(1.0)
    critic = models.mlp_critic(input_shape=(2,), units=LINE_UNITS)
    if key in ("clip", "gp"):
        model = WGAN(generator, critic, penalty=key, critic_boost=True, seed=SEED)
    else:
        model = (GAN if key == "gan" else MinimaxGAN)(generator, critic, n_critic=5, seed=SEED)
        model.critic_boost = True
    model.compile(generator_optimizer=keras.optimizers.SGD(learning_rate))
    record = ThetaRecorder()
    model.fit(segment(0.0, LINE_BATCH, 1), epochs=1, steps_per_epoch=LINE_ITERATIONS, verbose=0,
              shuffle=False, callbacks=[record])
    gradient = np.abs(np.diff(record.theta)) / learning_rate  # SGD: |step| = lr |dL/dtheta|
    return {"theta": record.theta, "estimate": record.estimate, "learning_rate": learning_rate,
            "abs_gradient": gradient.tolist(),
            "mean_abs_theta_last_100": float(np.mean(np.abs(record.theta[-100:])))}


def parallel_lines():
    thetas = np.asarray(LINE_THETAS)
    print("[parallel-lines] critics trained alone at each theta", flush=True)
    estimates = line_critic_estimates()
    # The clipped critic estimates K * W1, K set by the clipping box: its slope over |theta|.
    slope = float(np.polyfit(np.abs(thetas), estimates["clip"], 1)[0])
    trajectories = {}
    labels = {"clip": "WGAN, clipping", "gp": "WGAN-GP", "gan": "GAN, -log D (the package's)",
              "minimax": "GAN, minimax log(1 - D)"}
    for key in labels:
        # The clipped critic's gradient is K times smaller: its learning rate is LINE_LR / K.
        lr = LINE_LR / slope if key == "clip" else LINE_LR
        print(f"[parallel-lines] training g_theta: {labels[key]}", flush=True)
        trajectories[key] = line_trajectory(key, lr)
    nonzero = thetas != 0
    results = {
        "theta": thetas.tolist(),
        "closed_form": {"w1": np.abs(thetas).tolist(),
                        "js": np.where(nonzero, np.log(2), 0).tolist(),
                        "tv": nonzero.astype(float).tolist(),
                        "kl": ["inf" if t else 0.0 for t in thetas]},
        "estimates": estimates,
        "clip_slope_K": slope,
        "gp_max_abs_error": float(np.max(np.abs(np.asarray(estimates["gp"]) - np.abs(thetas)))),
        "js_estimate_range_theta_nonzero": [float(np.min(np.asarray(estimates["gan"])[nonzero])),
                                            float(np.max(np.asarray(estimates["gan"])[nonzero]))],
        "trajectories": trajectories, "labels": labels,
        "settings": {"critic_units": LINE_UNITS, "batch": LINE_BATCH,
                     "critic_steps": LINE_CRITIC_STEPS, "generator_iterations": LINE_ITERATIONS,
                     "generator_sgd_lr": LINE_LR, "clip_generator_lr": LINE_LR / slope},
    }
    save("parallel-lines", results, parallel_lines_figure(results))
    return {"clip_slope_K": round(slope, 5),
            "gp_max_abs_error": round(results["gp_max_abs_error"], 4),
            "js_estimate_range": [round(v, 4) for v in results["js_estimate_range_theta_nonzero"]],
            "final_theta": {k: round(t["theta"][-1], 4) for k, t in trajectories.items()},
            "mean_abs_theta_last_100": {k: round(t["mean_abs_theta_last_100"], 4)
                                        for k, t in trajectories.items()},
            "median_abs_gradient_last_100": {k: float(np.median(t["abs_gradient"][-100:]))
                                             for k, t in trajectories.items()}}


def parallel_lines_figure(r):
    thetas, labels = np.asarray(r["theta"]), r["labels"]
    fig, axes = plt.subplot_mosaic([["a", "b", "c"], ["d", "d", "e"]], figsize=(15, 9),
                                   gridspec_kw={"hspace": 0.35, "wspace": 0.45})
    dense = np.linspace(-1, 1, 401)
    ax = axes["a"]
    ax.plot(dense, np.abs(dense), color="k", label="W1 = |θ|")
    ax.plot(dense[dense != 0], np.full((dense != 0).sum(), np.log(2)), color="tab:red",
            label="JS = log 2 (θ ≠ 0)")
    ax.plot(dense[dense != 0], np.ones((dense != 0).sum()), color="tab:orange", ls="--",
            label="TV = 1 (θ ≠ 0)")
    ax.plot([0], [0], "o", color="tab:red", mfc="white", label="all four are 0 at θ = 0")
    ax.plot([], [], " ", label="KL = +∞ for θ ≠ 0 (not drawn)")
    ax.set(xlabel="θ", ylabel="distance between P_0 and P_θ", ylim=(-0.05, 1.75),
           title="(a) Closed forms (WGAN paper, Example 1)")
    ax.legend(loc="upper center", fontsize=8)

    ax = axes["b"]
    ax.plot(dense, np.abs(dense), color="k", lw=1, label="W1 = |θ|")
    ax.plot(thetas, r["estimates"]["gp"], "o", color=COLORS["gp"], label=LABELS["gp"])
    ax.set(xlabel="θ", ylabel="WGAN-GP estimate of W1", ylim=(-0.05, 1.15),
           title="(b) Wasserstein estimates, critics trained alone")
    right = ax.twinx()
    right.plot(thetas, r["estimates"]["clip"], "s", color=COLORS["clip"], mfc="none",
               label=f"{LABELS['clip']}\n(right axis: K·W1, K ≈ {r['clip_slope_K']:.4f})")
    right.set_ylabel("clipped critic's estimate", color=COLORS["clip"])
    right.set_ylim(-0.05 * r["clip_slope_K"], 1.15 * r["clip_slope_K"])
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper center", fontsize=8)

    ax = axes["c"]
    ax.plot(dense[dense != 0], np.full((dense != 0).sum(), np.log(2)), color="tab:red", lw=1,
            label="JS = log 2")
    ax.plot(thetas, r["estimates"]["gan"], "o", color=COLORS["gan"],
            label="discriminator's estimate, log 2 - loss / 2")
    ax.plot([0], [0], "o", color="tab:red", mfc="white", label="JS = 0 at θ = 0")
    ax.set(xlabel="θ", ylabel="JS estimate", ylim=(-0.05, 0.8),
           title="(c) JS estimate, discriminator trained alone")
    ax.legend(loc="lower right", fontsize=8)

    ax = axes["d"]
    for key, t in r["trajectories"].items():
        ax.plot(t["theta"], color=COLORS[key], lw=0.8 if key == "gan" else 1.5,
                label=f"{labels[key]}: mean |θ| over the last 100 = "
                      f"{t['mean_abs_theta_last_100']:.3f}")
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel="generator iteration", ylabel="θ",
           title="(d) g_θ trained from θ = 1 by fit "
                 "(SGD; n_critic 5 and the critic boost for all)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)

    ax = axes["e"]
    for key, t in r["trajectories"].items():
        ax.semilogy(np.maximum(t["abs_gradient"], 1e-9), color=COLORS[key], lw=0.8,
                    label=labels[key])
    ax.set(xlabel="generator iteration", ylabel="|dL_G / dθ| (log scale)",
           title="(e) The generator's gradient")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    return fig


# --- RESULTS.md 6. Optimal discriminator vs critic: WGAN Fig. 2 -----------------------------------

GAUSS_REAL = (-2.5, 0.5)  # mean, standard deviation
GAUSS_FAKE = (2.5, 0.5)
GAUSS_STEPS = 2000
GAUSS_UNITS = 128


def gaussian(mean, std, batch_size, seed):
    return stream(lambda i, s: mean + std * rng.normal([batch_size, 1], s, 0, i), seed)


def optimal_critic():
    xs = np.linspace(-6, 6, 481, dtype=np.float32)
    results = {"x": xs.tolist(), "real": GAUSS_REAL, "fake": GAUSS_FAKE, "steps": GAUSS_STEPS}
    for key in ("gan", "clip", "gp"):
        keras.utils.set_random_seed(SEED)
        critic = models.mlp_critic(input_shape=(1,), units=GAUSS_UNITS)
        objective = "gan" if key == "gan" else "wasserstein"
        print(f"[optimal-critic] {LABELS[key]}", flush=True)
        history = probes.train_critic(critic, gaussian(*GAUSS_REAL, 256, 1),
                                      gaussian(*GAUSS_FAKE, 256, 2), GAUSS_STEPS, objective, key,
                                      seed=SEED)
        scores, grads = probes.input_gradients(critic, xs[:, None])
        entry = {"estimate_history": history.tolist(), "score": scores.tolist(),
                 "abs_score_gradient": grads.tolist()}
        if key == "gan":
            d = 1.0 / (1.0 + np.exp(-scores.astype(np.float64)))
            entry.update(D=d.tolist(), abs_D_gradient=(d * (1 - d) * grads).tolist(),
                         abs_minus_log_D_gradient=((1 - d) * grads).tolist())
        results[key] = entry
    summary = {}
    at = {name: int(np.argmin(np.abs(xs - x))) for name, x in
          (("real_mode", GAUSS_REAL[0]), ("midpoint", 0.0), ("fake_mode", GAUSS_FAKE[0]))}
    between = (xs >= GAUSS_REAL[0]) & (xs <= GAUSS_FAKE[0])
    for key, gradient in (("gan |dD/dx|", results["gan"]["abs_D_gradient"]),
                          ("gan |d(-log D)/dx|", results["gan"]["abs_minus_log_D_gradient"]),
                          ("clip |df/dx|", results["clip"]["abs_score_gradient"]),
                          ("gp |df/dx|", results["gp"]["abs_score_gradient"])):
        g = np.asarray(gradient)
        summary[key] = {**{name: float(g[i]) for name, i in at.items()},
                        "max_over_min_between_modes": float(g[between].max() / g[between].min())}
    results["summary"] = summary
    save("optimal-critic", results, optimal_critic_figure(results))
    return summary


def optimal_critic_figure(r):
    xs = np.asarray(r["x"])
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8), gridspec_kw={"wspace": 0.5})

    def densities(ax):
        for (mean, std), label, color in ((r["real"], "real density", "0.3"),
                                          (r["fake"], "generated density", "0.65")):
            pdf = np.exp(-0.5 * ((xs - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi))
            ax.fill_between(xs, pdf / pdf.max(), color=color, alpha=0.25, label=label)

    ax = axes[0]
    densities(ax)
    ax.plot(xs, r["gan"]["D"], color=COLORS["gan"], label="D(x) = sigmoid(logit)")
    ax.set(xlabel="x", ylabel="D(x); densities scaled to peak 1",
           title="(a) GAN discriminator trained to optimality")
    ax.legend(fontsize=8, loc="center left")

    ax = axes[1]
    ax.plot(xs, r["gp"]["score"], color=COLORS["gp"], label="WGAN-GP critic f(x) (left axis)")
    ax.set(xlabel="x", title="(b) WGAN critics trained to optimality")
    ax.set_ylabel("WGAN-GP critic f(x)", color=COLORS["gp"])
    clip_axis = ax.twinx()
    clip_axis.plot(xs, r["clip"]["score"], color=COLORS["clip"], ls="--",
                   label="clipped critic f(x) (right axis)")
    clip_axis.set_ylabel("clipped critic f(x)", color=COLORS["clip"])
    density_axis = ax.twinx()
    density_axis.set_axis_off()
    densities(density_axis)
    density_axis.set_ylim(0, 1.05)
    handles = sum((a.get_legend_handles_labels()[0] for a in (ax, clip_axis, density_axis)), [])
    ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13),
              ncol=2)

    ax = axes[2]
    ax.semilogy(xs, np.maximum(r["gan"]["abs_D_gradient"], 1e-25), color=COLORS["gan"],
                label="|dD/dx|, GAN discriminator")
    ax.semilogy(xs, np.maximum(r["gan"]["abs_minus_log_D_gradient"], 1e-25), color=COLORS["gan"],
                ls=":", label="|d(-log D)/dx|: the -log D generator's")
    ax.semilogy(xs, r["gp"]["abs_score_gradient"], color=COLORS["gp"], label="|df/dx|, WGAN-GP")
    ax.semilogy(xs, r["clip"]["abs_score_gradient"], color=COLORS["clip"], ls="--",
                label="|df/dx|, clipping")
    for (mean, _), name in ((r["real"], "real"), (r["fake"], "generated")):
        ax.axvline(mean, color="0.6", lw=0.8)
        ax.text(mean, 1.02, name, transform=ax.get_xaxis_transform(), ha="center", fontsize=8)
    ax.set(xlabel="x", ylabel="input-gradient magnitude (log scale)", ylim=(1e-20, 1e3))
    ax.set_title("(c) Input-gradient magnitudes", pad=16)
    ax.legend(fontsize=8, loc="lower left")
    return fig


# --- RESULTS.md 7. Value surfaces: WGAN-GP Fig. 1a ------------------------------------------------

SURFACE_DATASETS = ("8gaussians", "25gaussians", "swissroll")
SURFACE_UNITS = 512  # the package's toy MLP critic (3 x 512 ReLU), as the WGAN-GP toy code
SURFACE_STEPS = 1000
SURFACE_EXTENT = 2.5
# The WGAN-GP toy code's penalty weight (0.1, as the package's toy runs) and its Adam(beta1 0.5,
# beta2 0.9), at 10x its learning rate so that 1000 steps reach the optimum.
SURFACE_GP = dict(gp_weight=0.1, optimizer=lambda: keras.optimizers.Adam(1e-3, 0.5, 0.9))
PEAK_OFFSET = 0.1


def noisy(name, batch_size, seed):
    """The held-fixed "generator" of WGAN-GP Fig. 1a: real data plus unit-variance Gaussian
    noise."""
    return data.load(f"toy:{name}", batch_size=batch_size, seed=seed).enumerate().map(
        lambda i, x: x + rng.normal([batch_size, 2], seed, 3, i))


def local_peak_share(critic, real):
    """Share of real points the critic scores above the same point moved PEAK_OFFSET in a random
    direction: 1 when every data point sits on a ridge or peak of the value surface, about 0.5
    when the critic ignores the data's shape (a bowl or a ramp scores half the moves higher)."""
    angle = np.random.default_rng(SEED).uniform(0, 2 * np.pi, len(real))
    moved = real + PEAK_OFFSET * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    scores = [critic.predict(x.astype(np.float32), verbose=0).ravel() for x in (real, moved)]
    return float(np.mean(scores[0] > scores[1]))


def value_surfaces():
    results = {}
    for name in SURFACE_DATASETS:
        real_eval = next(iter(data.load(f"toy:{name}", batch_size=1000, seed=90))).numpy()
        fake_eval = next(iter(noisy(name, 1000, 91))).numpy()
        w1 = metrics.w1_exact(real_eval, fake_eval)
        for key in ("clip", "gp"):
            keras.utils.set_random_seed(SEED)
            critic = models.mlp_critic(input_shape=(2,), units=SURFACE_UNITS)
            print(f"[value-surfaces] {name}, {LABELS[key]}", flush=True)
            settings = ({"gp_weight": SURFACE_GP["gp_weight"],
                         "optimizer": SURFACE_GP["optimizer"]()} if key == "gp" else {})
            history = probes.train_critic(critic, data.load(f"toy:{name}", batch_size=256, seed=1),
                                          noisy(name, 256, 2), SURFACE_STEPS, "wasserstein", key,
                                          seed=SEED, **settings)
            extent = (-SURFACE_EXTENT, SURFACE_EXTENT)
            xs, ys, values = probes.value_surface(critic, extent, extent, 101)
            grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
            lipschitz = float(probes.input_gradients(critic, grid)[1].max())
            estimate = probes.estimate(critic, real_eval, fake_eval)
            results[f"{name}, {key}"] = {
                "dataset": name, "penalty": key, "estimate_history": history.tolist(),
                "estimate": estimate, "exact_w1": w1, "max_gradient_norm_on_grid": lipschitz,
                # A K-Lipschitz critic's estimate is at most K * W1: the share of it attained.
                "share_of_lipschitz_bound": estimate / (lipschitz * w1),
                "local_peak_share": local_peak_share(critic, real_eval),
                "x": xs.tolist(), "y": ys.tolist(), "values": values.tolist()}
    save("value-surfaces", results, value_surfaces_figure(results))
    return {k: {key: round(v[key], 4) for key in ("estimate", "exact_w1", "local_peak_share",
                                                   "share_of_lipschitz_bound")}
            for k, v in results.items()}


def value_surfaces_figure(results):
    fig, axes = plt.subplots(2, len(SURFACE_DATASETS), figsize=(14, 9.5),
                             gridspec_kw={"hspace": 0.3, "wspace": 0.4})
    for column, name in enumerate(SURFACE_DATASETS):
        real = next(iter(data.load(f"toy:{name}", batch_size=500, seed=90))).numpy()
        for row, key in enumerate(("clip", "gp")):
            r = results[f"{name}, {key}"]
            ax = axes[row, column]
            contour = ax.contourf(r["x"], r["y"], r["values"], levels=20, cmap="viridis")
            ax.contour(r["x"], r["y"], r["values"], levels=20, colors="k", linewidths=0.3)
            ax.scatter(*real.T, s=2, c="tab:orange", label="real samples")
            fig.colorbar(contour, ax=ax, fraction=0.046, pad=0.03)
            ax.set(aspect="equal", xlabel="x₁", ylabel="x₂",
                   title=f"toy:{name}, {'weight clipping' if key == 'clip' else 'gradient penalty'}"
                         f"\nlocal-peak share {r['local_peak_share']:.2f}")
            ax.title.set_fontsize(10)
    axes[0, 0].legend(loc="lower left", fontsize=8, markerscale=4)
    fig.suptitle("Critics trained to optimality against real data + N(0, I) noise (top: weight "
                 "clipping, bottom: gradient penalty); colour: the critic's value f(x)\n"
                 "local-peak share: real points scored above "
                 f"the same point moved {PEAK_OFFSET} (0.5: the critic ignores the data's shape)")
    return fig


# --- RESULTS.md 8. Gradient norms and weights: WGAN-GP Fig. 1b ------------------------------------

DEEP_DEPTH = 12
DEEP_UNITS = 256  # the paper's toy networks have 512 (4x the compute)
DEEP_BATCH = 64
DEEP_ITERATIONS = 200  # no critic boost: 1000 critic iterations per run
DEEP_FLOOR = 1e-30  # where a gradient that is exactly 0 (every ReLU of a layer off) is drawn
DEEP_RUNS = {"clip 0.1": dict(penalty="clip", clip_value=0.1),
             "clip 0.01": dict(penalty="clip", clip_value=0.01),
             "clip 0.001": dict(penalty="clip", clip_value=0.001),
             "gradient penalty": dict(penalty="gp")}


def gradient_norms():
    probe_real = next(iter(data.load("toy:swissroll", batch_size=256, seed=90))).numpy()
    results = {}
    for label, settings in DEEP_RUNS.items():
        keras.utils.set_random_seed(SEED)
        generator = models.deep_mlp_generator(2, (2,), DEEP_DEPTH, DEEP_UNITS)
        critic = models.deep_mlp_critic((2,), DEEP_DEPTH, DEEP_UNITS)
        model = WGAN(generator, critic, critic_boost=False, seed=SEED, **settings)
        model.compile()
        print(f"[gradient-norms] {label}", flush=True)
        start = time.time()
        history = model.fit(data.load("toy:swissroll", batch_size=DEEP_BATCH, seed=1), epochs=1,
                            steps_per_epoch=DEEP_ITERATIONS, verbose=0, shuffle=False)
        fake = generator(rng.normal([256, 2], 1234, 3, 0)).numpy()
        norms = probes.layer_gradient_norms(critic, probe_real, fake)
        weights = probes.critic_weights(critic)
        c = settings.get("clip_value")
        results[label] = {
            "layer_gradient_norms": norms, "wasserstein": history.history["wasserstein"],
            "weights_histogram": np.histogram(weights, bins=60)[0].tolist(),
            "weights_bin_edges": np.histogram(weights, bins=60)[1].tolist(),
            "share_at_clip_bounds": (float(np.mean(np.abs(weights) >= 0.99 * c)) if c else None),
            "weights_std": float(weights.std()), "seconds": time.time() - start}
    save("gradient-norms", results, gradient_norms_figure(results))
    return {k: {"layer_gradient_norms": [float(f"{n:.3g}")
                                         for n in v["layer_gradient_norms"].values()],
                "share_at_clip_bounds": v["share_at_clip_bounds"]} for k, v in results.items()}


def gradient_norms_figure(results):
    fig, axes = plt.subplot_mosaic([["norms", "clip"], ["norms", "gp"]], figsize=(13, 6),
                                   gridspec_kw={"width_ratios": [1.3, 1], "hspace": 0.45})
    ax = axes["norms"]
    colors = {"clip 0.1": "tab:red", "clip 0.01": "tab:orange", "clip 0.001": "tab:brown",
              "gradient penalty": "tab:blue"}
    for label, r in results.items():
        norms = np.asarray(list(r["layer_gradient_norms"].values()))
        layer = np.arange(1, len(norms) + 1)
        ax.plot(layer, np.log10(np.maximum(norms, DEEP_FLOOR)), "o-", color=colors[label],
                label=f"weight clipping, c = {label.split()[1]}" if label.startswith("clip")
                else label)
        if (norms == 0).any():
            ax.plot(layer[norms == 0], np.full((norms == 0).sum(), np.log10(DEEP_FLOOR)), "x",
                    color="k", ms=9, label="exactly 0 (the next layer's ReLUs are all off)")
    ax.set(xlabel="critic layer (1 = nearest the input)",
           ylabel="log10 ‖∂ critic loss / ∂ activations‖",
           title=f"(left) Gradient norms through a {DEEP_DEPTH}-layer ReLU critic\n"
                 f"on the Swiss roll, after {DEEP_ITERATIONS} generator iterations")
    ax.invert_xaxis()
    ax.legend(fontsize=9)
    for key, label, name in (("clip", "clip 0.01", "weight clipping, c = 0.01"),
                             ("gp", "gradient penalty", "gradient penalty")):
        r = results[label]
        edges = np.asarray(r["weights_bin_edges"])
        axes[key].bar(edges[:-1], r["weights_histogram"], width=np.diff(edges), align="edge",
                      color=colors[label])
        axes[key].set_yscale("log")
        axes[key].set(xlabel="critic weight (kernels)", ylabel="count (log scale)",
                      title=f"(right) Weights, {name}")
        axes[key].xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
    return fig


# --- RESULTS.md 9. Robustness over random architectures: WGAN-GP Table 2 --------------------------

ARCH_COUNT = 8
ARCH_SEED = 2017
ARCH_FILTERS = (4, 8, 16)  # the paper's (32, 64, 128) divided by 8: 16x16x1 digits on 2 CPU cores
ARCH_BATCH = 64
ARCH_ITERATIONS = 400
ARCH_MEASURE_EVERY = 100
# Classifier FD thresholds (real vs real: about 2). From the runs of docs/RESULTS.md: recognisable
# digits score 30-50, noisy digit-like samples 170-340, all-white or collapsed ones about 1000.
ARCH_THRESHOLDS = (50, 100, 200, 400, 800)
ARCH_SAMPLES = 1000


def draw_architectures(count=None, seed=ARCH_SEED):
    """``count`` architectures from WGAN-GP's Table 1 (``models.RANDOM_ARCHITECTURE_SET``), every
    setting of G and of D drawn independently and uniformly, base filters from ``ARCH_FILTERS``."""
    draw = np.random.default_rng(seed)
    space = dict(models.RANDOM_ARCHITECTURE_SET, filters=ARCH_FILTERS)
    pick = lambda key: space[key][draw.integers(len(space[key]))]  # noqa: E731
    return [{f"{player}_{key}": (v.item() if hasattr(v, "item") else v)
             for player in ("g", "d") for key, v in ((k, pick(k)) for k in space)}
            for _ in range(ARCH_COUNT if count is None else count)]


def train_architecture(arch, objective, real, classifier):
    """One architecture trained by one objective with that paper's settings (the GAN: DCGAN's
    Adam(2e-4, 0.5), one discriminator step, batch norm; WGAN-GP: Adam(1e-4, 0, 0.9), five critic
    steps, lambda 10, layer norm in the critic); classifier FD every ARCH_MEASURE_EVERY
    generator iterations (None once the samples are not finite)."""
    keras.utils.set_random_seed(SEED)
    generator = models.dcgan_variant_generator(
        depth=arch["g_depth"], filters=arch["g_filters"], nonlinearity=arch["g_nonlinearity"],
        batch_norm=arch["g_normalization"])
    # WGAN-GP replaces the critic's batch norm by layer norm (Gulrajani et al. 2017, Sec. 4).
    normalization = (("layer" if objective == "wgan-gp" else "batch")
                     if arch["d_normalization"] else None)
    critic = models.dcgan_variant_critic(
        depth=arch["d_depth"], filters=arch["d_filters"], nonlinearity=arch["d_nonlinearity"],
        normalization=normalization)
    model = (WGAN(generator, critic, penalty="gp", seed=SEED) if objective == "wgan-gp"
             else GAN(generator, critic, seed=SEED))
    model.compile()
    latent = rng.normal([ARCH_SAMPLES, generator.input_shape[-1]], 1234, 3, 1)
    start, fds = time.time(), []
    while int(model.generator_iterations.numpy()) < ARCH_ITERATIONS:
        # Resumes the data stream where the last period stopped, as wgan_tf.train does.
        batches = data.load("digits", 16, ARCH_BATCH, 1, seed=1,
                            skip_batches=int(model.critic_iterations.numpy()))
        model.fit(batches, epochs=1, steps_per_epoch=ARCH_MEASURE_EVERY, verbose=0, shuffle=False)
        samples = generator(latent).numpy()
        fds.append(metrics.classifier_fd(real, np.clip(samples, -1, 1), classifier)
                   if np.isfinite(samples).all() else None)
    return {"classifier_fd": fds[-1], "classifier_fd_curve": fds,
            "seconds": time.time() - start,
            "samples": np.clip(samples[:8, ..., 0], -1, 1).round(2).tolist()}


def outcome_table(fds_gan, fds_gp, thresholds=ARCH_THRESHOLDS):
    """WGAN-GP's Table 2 with classifier FD: per threshold, how many architectures only the GAN,
    only WGAN-GP, both or neither trained to an FD below it (a failed run, FD None, fails)."""
    ok = lambda fd, t: fd is not None and fd < t  # noqa: E731
    rows = []
    for t in thresholds:
        pairs = [(ok(a, t), ok(b, t)) for a, b in zip(fds_gan, fds_gp)]
        rows.append({"max_fd": t, "only_gan": sum(a and not b for a, b in pairs),
                     "only_wgan_gp": sum(b and not a for a, b in pairs),
                     "both": sum(a and b for a, b in pairs),
                     "neither": sum(not a and not b for a, b in pairs)})
    return rows


def random_architectures():
    real = next(iter(data.load("digits", 16, ARCH_SAMPLES, 1, seed=99))).numpy()
    classifier = metrics.digits_classifier(16, 1)
    runs = []
    for i, arch in enumerate(draw_architectures()):
        run = {"architecture": arch}
        for objective in ("gan", "wgan-gp"):
            print(f"[random-architectures] {i + 1}/{ARCH_COUNT} {objective}: {arch}", flush=True)
            run[objective] = train_architecture(arch, objective, real, classifier)
            print(f"    classifier FD {run[objective]['classifier_fd_curve']}, "
                  f"{run[objective]['seconds']:.0f} s", flush=True)
        runs.append(run)
    table = outcome_table([r["gan"]["classifier_fd"] for r in runs],
                          [r["wgan-gp"]["classifier_fd"] for r in runs])
    other_real = next(iter(data.load("digits", 16, ARCH_SAMPLES, 1, seed=98))).numpy()
    results = {"runs": runs, "table": table,
               "real_vs_real_fd": metrics.classifier_fd(real, other_real, classifier),
               "settings": {"count": ARCH_COUNT, "seed": ARCH_SEED, "filters": ARCH_FILTERS,
                            "generator_iterations": ARCH_ITERATIONS, "batch": ARCH_BATCH,
                            "thresholds": ARCH_THRESHOLDS, "samples": ARCH_SAMPLES}}
    save("random-architectures", results, random_architectures_figure(results))
    return table


def describe(arch, player):
    return (f"{player.upper()}: {arch[player + '_nonlinearity']}, depth {arch[player + '_depth']}, "
            f"{arch[player + '_filters']} filters, "
            f"{'norm' if arch[player + '_normalization'] else 'no norm'}")


def random_architectures_figure(r):
    runs, settings = r["runs"], r["settings"]
    fig = plt.figure(figsize=(13, 1.9 * len(runs) + 1))
    grid = fig.add_gridspec(len(runs), 3, width_ratios=[2.2, 1, 1], wspace=0.05, hspace=0.35,
                            top=0.95)
    ax = fig.add_subplot(grid[:, 0])
    ax.set_position(ax.get_position().shrunk(0.9, 1.0))
    worst = 1.2 * max(fd for run in runs for o in ("gan", "wgan-gp")
                      for fd in [run[o]["classifier_fd"]] if fd is not None)
    shown = lambda fd: fd if fd is not None else worst  # noqa: E731
    for i, run in enumerate(runs):
        ax.scatter(shown(run["gan"]["classifier_fd"]), shown(run["wgan-gp"]["classifier_fd"]),
                   s=40, color="tab:blue")
        ax.annotate(str(i + 1), (shown(run["gan"]["classifier_fd"]),
                                 shown(run["wgan-gp"]["classifier_fd"])),
                    textcoords="offset points", xytext=(5, 3), fontsize=9)
    low = 0.8 * min(shown(run[o]["classifier_fd"]) for run in runs for o in ("gan", "wgan-gp"))
    ax.plot([low, worst], [low, worst], color="0.5", lw=0.8, label="equal FD")
    for t in settings["thresholds"]:
        ax.axvline(t, color="0.85", lw=0.8, zorder=0)
        ax.axhline(t, color="0.85", lw=0.8, zorder=0)
    ax.set(xscale="log", yscale="log", xlabel="classifier FD, GAN (-log D)",
           ylabel="classifier FD, WGAN-GP",
           title="below the diagonal: WGAN-GP better\ngrey lines: the table's thresholds")
    fig.suptitle(f"{len(runs)} random architectures on 16x16 digits, "
                 f"{settings['generator_iterations']} generator iterations each: classifier FD "
                 "(lower is better) and 8 samples per run", y=0.995)
    ax.legend(loc="upper left", fontsize=8)
    for i, run in enumerate(runs):
        for column, (objective, name) in enumerate((("gan", "GAN"), ("wgan-gp", "WGAN-GP"))):
            strip = fig.add_subplot(grid[i, column + 1])
            tiles = np.asarray(run[objective]["samples"])  # 8 samples, shown as 2 rows of 4
            rows = [np.concatenate(list(tiles[k:k + 4]), axis=1) for k in (0, 4)]
            strip.imshow(np.concatenate(rows, axis=0), cmap="gray", vmin=-1, vmax=1)
            fd = run[objective]["classifier_fd"]
            strip.set_title(f"{i + 1}. {name}: FD {fd:.0f}" if fd is not None
                            else f"{i + 1}. {name}: not finite", fontsize=8, loc="left")
            strip.set_axis_off()
        strip.text(1.02, 0.5, describe(run["architecture"], "g") + "\n" +
                   describe(run["architecture"], "d"), transform=strip.transAxes, va="center",
                   fontsize=7)
    return fig


# --smoke: every loop once or twice, every training a couple of steps.
SMOKE = dict(LINE_THETAS=(-1.0, 0.0, 1.0), LINE_CRITIC_STEPS=2, LINE_ITERATIONS=2, GAUSS_STEPS=2,
             SURFACE_STEPS=2, DEEP_ITERATIONS=2, ARCH_COUNT=1, ARCH_ITERATIONS=2,
             ARCH_MEASURE_EVERY=1, ARCH_SAMPLES=100)

EXPERIMENTS = {"parallel-lines": parallel_lines, "optimal-critic": optimal_critic,
               "value-surfaces": value_surfaces, "gradient-norms": gradient_norms,
               "random-architectures": random_architectures}
FIGURES = {"parallel-lines": parallel_lines_figure, "optimal-critic": optimal_critic_figure,
           "value-surfaces": value_surfaces_figure, "gradient-norms": gradient_norms_figure,
           "random-architectures": random_architectures_figure}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiment", choices=[*EXPERIMENTS, "all"])
    parser.add_argument("--out", default=paper_claims.OUT, help="where results/ and figures/ go")
    parser.add_argument("--replot", action="store_true",
                        help="redraw the figure from OUT/results/<name>.json, training nothing")
    parser.add_argument("--smoke", action="store_true",
                        help="a few steps of everything, to check the script runs (the docs test; "
                             "the numbers mean nothing): use with --out elsewhere than docs")
    args = parser.parse_args()
    paper_claims.OUT = args.out
    if args.smoke:
        globals().update(SMOKE)
    for name in EXPERIMENTS if args.experiment == "all" else [args.experiment]:
        if args.replot:
            with open(f"{args.out}/results/{name}.json") as f:
                paper_claims.save_figure(name, FIGURES[name](json.load(f)))
            continue
        start = time.time()
        print(json.dumps({name: EXPERIMENTS[name]()}, indent=1), flush=True)
        print(f"[{name}] {time.time() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
