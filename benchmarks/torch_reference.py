"""A plain PyTorch implementation of the package's training step, for the throughput comparison.

What a competent PyTorch user would write for the same step as ``wgan_tf.WGAN.train_step``, with
nothing tuned beyond the usual: the WGAN reference code's networks (``DCGAN_G`` / ``DCGAN_D`` in
martinarjovsky/WassersteinGAN: 4x4 kernels, stride 2, no bias, N(0, 0.02) weights, batch norm with
N(1, 0.02) scales in the generator and in the clipped critic) or WGAN-GP's (layer norm over
[C, H, W] in the critic instead of batch norm), and the WGAN-GP toy code's MLPs (three hidden ReLU
layers of 512, latent 2). One generator iteration is ``n_critic`` critic updates, each on a fresh
real batch and fresh prior samples (the generator forward without gradients), then one generator
update (the critic's weights frozen, as the reference code does). ``penalty="clip"``: RMSProp(5e-5)
and weights clamped to [-0.01, 0.01] after each critic update; ``"gp"``: Adam(1e-4, 0, 0.9) and
lambda 10 (toys: Adam(1e-4, 0.5, 0.9), lambda 0.1), the penalty's norm in float32.

``precision="bfloat16"`` runs forward passes under ``torch.autocast("cpu", dtype=torch.bfloat16)``
(weights, optimizer state and the backward's accumulation stay float32, as autocast does);
``channels_last`` puts the convolutional networks and their inputs in NHWC memory format, which
oneDNN prefers on CPUs. Real data are a few random batches in memory, cycled, so only the step is
timed, as in ``train_throughput.py``.

Imports only torch and numpy (no TensorFlow). The benchmark treats it as optional: without torch,
``available()`` is False and ``main`` prints ``{"available": false}``.

    python benchmarks/torch_reference.py --arch dcgan --penalty clip --precision bfloat16
"""
import argparse
import json
import os
import time

try:
    import torch
    from torch import nn
except ImportError:  # the `bench` extra is not installed
    torch = None

# WGAN and WGAN-GP papers' settings, as in wgan_tf/config.py.
CLIP_VALUE = 0.01
RMSPROP = dict(lr=5e-5, alpha=0.99, eps=1e-8)  # the reference code's optim.RMSprop(lr=5e-5)
GP_ADAM = dict(lr=1e-4, betas=(0.0, 0.9), eps=1e-8)
TOY_GP_ADAM = dict(lr=1e-4, betas=(0.5, 0.9), eps=1e-8)
GP_WEIGHT, TOY_GP_WEIGHT = 10.0, 0.1
PRECISIONS = ("float32", "bfloat16")


def available():
    return torch is not None


def default_threads():
    """The cores this process may run on (what TensorFlow's thread pools size themselves to)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# -- Networks ---------------------------------------------------------------------------------------

def _init_dcgan(module):
    """The reference code's weights_init: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def dcgan_generator(image_size=64, channels=3, latent_dim=100, filters=64):
    """DCGAN_G: latent [B, latent_dim] -> images [B, channels, size, size] in [-1, 1]."""
    width, size = filters * image_size // 8, 4
    layers = [nn.Unflatten(1, (latent_dim, 1, 1)),
              nn.ConvTranspose2d(latent_dim, width, 4, 1, 0, bias=False),
              nn.BatchNorm2d(width), nn.ReLU(True)]
    while size < image_size // 2:
        layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                   nn.BatchNorm2d(width // 2), nn.ReLU(True)]
        width, size = width // 2, size * 2
    layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
    net = nn.Sequential(*layers)
    net.apply(_init_dcgan)
    return net


def dcgan_critic(image_size=64, channels=3, filters=64, normalization="batch"):
    """DCGAN_D: images -> one unbounded score per sample [B]. ``normalization`` "batch" (WGAN) or
    "layer" (WGAN-GP: layer norm over [C, H, W], elementwise affine, as Keras's
    LayerNormalization(axis=[1, 2, 3]))."""
    layers = [nn.Conv2d(channels, filters, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    width, size = filters, image_size // 2
    while size > 4:
        layers.append(nn.Conv2d(width, width * 2, 4, 2, 1, bias=False))
        width, size = width * 2, size // 2
        layers.append(nn.BatchNorm2d(width) if normalization == "batch"
                      else nn.LayerNorm([width, size, size], eps=1e-5))
        layers.append(nn.LeakyReLU(0.2, True))
    layers += [nn.Conv2d(width, 1, 4, 1, 0, bias=False), nn.Flatten(0)]
    net = nn.Sequential(*layers)
    net.apply(_init_dcgan)
    return net


def _mlp(inputs, outputs, units=512):
    layers = []
    for width in (inputs, units, units):
        layers += [nn.Linear(width, units), nn.ReLU(True)]
    layers.append(nn.Linear(units, outputs))
    net = nn.Sequential(*layers)
    for module in net.modules():  # Keras Dense's glorot_uniform / zeros, as wgan_tf's MLPs
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return net


def mlp_generator(latent_dim=2, point_dim=2, units=512):
    return _mlp(latent_dim, point_dim, units)


def mlp_critic(point_dim=2, units=512):
    return nn.Sequential(_mlp(point_dim, 1, units), nn.Flatten(0))


# -- The step ---------------------------------------------------------------------------------------

def gradient_penalty(critic, real, fake, uniform, autocast=False, epsilon=1e-12):
    """WGAN-GP's (||grad critic(x_hat)||_2 - 1)^2 per sample, the norm in float32.

    With ``autocast`` the critic's forward runs under bfloat16 autocast; the inner gradient is
    taken outside it, as PyTorch's AMP examples do for a gradient penalty (its operations run in
    the dtypes the forward recorded: bfloat16 convolutions)."""
    u = uniform.view([-1] + [1] * (real.dim() - 1))
    x_hat = (u * real + (1.0 - u) * fake).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        scores = critic(x_hat)
    (grads,) = torch.autograd.grad(scores.float().sum(), x_hat, create_graph=True)
    norms = torch.sqrt(grads.float().square().flatten(1).sum(1) + epsilon)
    return (norms - 1.0).square()


class Trainer:
    """Algorithm 1 (WGAN) or WGAN-GP's Algorithm 1 on in-memory data."""

    def __init__(self, arch="dcgan", image_size=64, batch_size=64, n_critic=5, penalty="clip",
                 precision="float32", channels_last=True, seed=0, pool=4):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if penalty not in ("clip", "gp"):
            raise ValueError(f"penalty must be 'clip' or 'gp', got {penalty!r}")
        torch.manual_seed(seed)
        self.n_critic, self.penalty, self.batch_size = n_critic, penalty, batch_size
        self.autocast = precision == "bfloat16"
        toy = arch == "mlp"
        if toy:
            self.latent_dim = 2
            self.generator, self.critic = mlp_generator(), mlp_critic()
            shape = (batch_size, 2)
            channels_last = False
        elif arch == "dcgan":
            self.latent_dim = 100
            self.generator = dcgan_generator(image_size)
            self.critic = dcgan_critic(image_size,
                                       normalization="layer" if penalty == "gp" else "batch")
            shape = (batch_size, 3, image_size, image_size)
        else:
            raise ValueError(f"arch must be 'dcgan' or 'mlp', got {arch!r}")
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.generator.to(memory_format=self.memory_format).train()
        self.critic.to(memory_format=self.memory_format).train()
        self.real = [(torch.rand(shape) * 2 - 1).contiguous(memory_format=self.memory_format)
                     for _ in range(pool)]
        self.batches = 0
        if penalty == "clip":
            self.critic_optimizer = torch.optim.RMSprop(self.critic.parameters(), **RMSPROP)
            self.generator_optimizer = torch.optim.RMSprop(self.generator.parameters(), **RMSPROP)
            self.clip_weights()
        else:
            adam = TOY_GP_ADAM if toy else GP_ADAM
            self.gp_weight = TOY_GP_WEIGHT if toy else GP_WEIGHT
            self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), **adam)
            self.generator_optimizer = torch.optim.Adam(self.generator.parameters(), **adam)

    def _forward(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast)

    def next_real(self):
        real = self.real[self.batches % len(self.real)]
        self.batches += 1
        return real

    def clip_weights(self):
        with torch.no_grad():
            for p in self.critic.parameters():
                p.clamp_(-CLIP_VALUE, CLIP_VALUE)

    def critic_step(self):
        real = self.next_real()
        z = torch.randn(self.batch_size, self.latent_dim)
        with torch.no_grad(), self._forward():
            fake = self.generator(z).float().contiguous(memory_format=self.memory_format)
        with self._forward():
            loss = self.critic(fake).float().mean() - self.critic(real).float().mean()
        if self.penalty == "gp":
            uniform = torch.rand(self.batch_size)
            penalty = gradient_penalty(self.critic, real, fake, uniform, self.autocast)
            loss = loss + self.gp_weight * penalty.mean()
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_optimizer.step()
        if self.penalty == "clip":
            self.clip_weights()
        return loss

    def generator_step(self):
        for p in self.critic.parameters():  # no critic weight gradients (the reference code)
            p.requires_grad_(False)
        z = torch.randn(self.batch_size, self.latent_dim)
        with self._forward():
            loss = -self.critic(self.generator(z)).float().mean()
        self.generator_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.generator_optimizer.step()
        for p in self.critic.parameters():
            p.requires_grad_(True)
        return loss

    def iteration(self):
        for _ in range(self.n_critic):
            critic_loss = self.critic_step()
        return critic_loss, self.generator_step()


def generator_iterations_per_second(arch="dcgan", image_size=64, batch_size=64, n_critic=5,
                                    penalty="clip", precision="float32", iterations=10, warmup=2,
                                    channels_last=True, threads=None):
    """Generator iterations per second of the steady-state step (after ``warmup`` iterations)."""
    torch.set_num_threads(threads or default_threads())
    trainer = Trainer(arch, image_size, batch_size, n_critic, penalty, precision, channels_last)
    for _ in range(warmup):
        trainer.iteration()
    start = time.perf_counter()
    for _ in range(iterations):
        losses = trainer.iteration()
    elapsed = time.perf_counter() - start
    if not all(torch.isfinite(loss).item() for loss in losses):
        raise FloatingPointError("the reference step produced a non-finite loss")
    return iterations / elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", choices=("dcgan", "mlp"), default="dcgan")
    parser.add_argument("--penalty", choices=("clip", "gp"), default="clip")
    parser.add_argument("--precision", choices=PRECISIONS + ("both",), default="both")
    parser.add_argument("--memory-format", choices=("channels_last", "contiguous", "both"),
                        default="channels_last")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default 64, or 256 for --arch mlp (the toy code's)")
    parser.add_argument("--n-critic", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--turns", action="store_true",
                        help="after the warm-up, time one iteration per 'go' line on stdin "
                             "(train_throughput.py --turns)")
    args = parser.parse_args(argv)
    if not available():
        print(json.dumps({"available": False}))
        return
    batch = args.batch_size or (256 if args.arch == "mlp" else 64)
    if args.turns:
        torch.set_num_threads(args.threads or default_threads())
        precision = PRECISIONS[-1] if args.precision == "both" else args.precision
        trainer = Trainer(args.arch, args.image_size, batch, args.n_critic, args.penalty,
                          precision, args.arch != "mlp" and args.memory_format != "contiguous")
        for _ in range(args.warmup):
            trainer.iteration()
        from turns import take_turns

        losses = take_turns(trainer.iteration, f"torch {torch.__version__}")
        if losses is not None and not all(torch.isfinite(loss).item() for loss in losses):
            raise FloatingPointError("the reference step produced a non-finite loss")
        return
    precisions = PRECISIONS if args.precision == "both" else (args.precision,)
    formats = ("channels_last", "contiguous") if args.memory_format == "both" else (
        args.memory_format,)
    if args.arch == "mlp":
        formats = ("contiguous",)
    results = {"available": True, "torch": torch.__version__,
               "threads": args.threads or default_threads(), "arch": args.arch,
               "penalty": args.penalty, "image_size": args.image_size, "batch_size": batch,
               "n_critic": args.n_critic, "generator_iterations_per_s": {}}
    for precision in precisions:
        for memory_format in formats:
            its = generator_iterations_per_second(
                args.arch, args.image_size, batch, args.n_critic, args.penalty, precision,
                args.iterations, args.warmup, memory_format == "channels_last", args.threads)
            results["generator_iterations_per_s"][f"{precision}/{memory_format}"] = its
            print(f"# {precision}/{memory_format}: {its:.4f} it/s", flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
