"""Training configuration: plain data whose defaults reproduce the WGAN paper.

Every default of the package (CLI, ``WGAN``, optimizers) comes from here.
"""
import dataclasses
import json
from typing import Optional

from wgan_tf.errors import ConfigError

# Algorithm 1 of Arjovsky, Chintala, Bottou (2017), with the reference code's RMSProp.
PAPER_RMSPROP = dict(learning_rate=5e-5, rho=0.99, epsilon=1e-16)
# Gulrajani et al. (2017), Algorithm 1: Adam(1e-4, beta1 0, beta2 0.9), lambda 10.
GP_ADAM = dict(learning_rate=1e-4, beta_1=0.0, beta_2=0.9, epsilon=1e-8)
# Radford et al. (2016), DCGAN: the standard-GAN baseline's optimizer.
DCGAN_ADAM = dict(learning_rate=2e-4, beta_1=0.5, beta_2=0.999, epsilon=1e-8)
# The reference code's "critic boost": 100 critic iterations for the first 25 generator
# iterations and every 500th.
BOOST_CRITIC_ITERATIONS = 100
BOOST_FIRST = 25
BOOST_EVERY = 500


@dataclasses.dataclass
class TrainConfig:
    dataset: str = "digits"
    arch: str = "dcgan"
    # "wasserstein" (the paper) or "gan" (its standard-GAN baseline, DCGAN-style).
    objective: str = "wasserstein"
    # None: "clip" (Algorithm 1) for the Wasserstein objective, "none" for the GAN baseline.
    penalty: Optional[str] = None
    image_size: int = 64
    channels: int = 3
    latent_dim: int = 100
    filters: int = 64
    batch_size: int = 64
    # None: 5 (Algorithm 1) for the Wasserstein objective, 1 (DCGAN) for the GAN baseline.
    n_critic: Optional[int] = None
    clip_value: float = 0.01
    gp_weight: float = 10.0
    # None: on for weight clipping (as the WGAN reference code), off for the gradient penalty
    # (as the WGAN-GP reference code).
    critic_boost: Optional[bool] = None
    # None: the paper's for the objective and penalty (see WGAN.compile); "rmsprop" or "adam"
    # (beta1 0.5, the momentum the paper found unstable with clipping) at that learning rate.
    optimizer: Optional[str] = None
    steps: int = 100_000
    seed: int = 0
    devices: int = 1
    log_every: int = 10
    sample_every: int = 100
    checkpoint_every: int = 500
    jit_compile: str = "auto"

    # Settings that may change when a run is resumed; the rest define the run.
    RESUMABLE = ("steps", "devices", "log_every", "sample_every", "checkpoint_every",
                 "jit_compile")

    def __post_init__(self):
        wasserstein = self.objective == "wasserstein"
        if self.penalty is None:
            self.penalty = "clip" if wasserstein else "none"
        if self.n_critic is None:
            self.n_critic = 5 if wasserstein else 1
        if self.critic_boost is None:
            self.critic_boost = self.penalty == "clip"
        self.validate()

    def validate(self):
        if self.objective not in ("wasserstein", "gan"):
            raise ConfigError(f"unknown objective {self.objective!r}; choose wasserstein or gan")
        if self.objective == "gan" and self.penalty != "none":
            raise ConfigError(f"--objective gan takes no Lipschitz penalty, got --penalty "
                              f"{self.penalty}")
        if self.objective == "wasserstein" and self.penalty not in ("clip", "gp"):
            raise ConfigError(f"unknown penalty {self.penalty!r}; choose clip or gp")
        if self.image_size < 16 or self.image_size & (self.image_size - 1):
            raise ConfigError(f"image size must be a power of two >= 16, got {self.image_size}")
        for name in ("batch_size", "n_critic", "steps", "devices", "latent_dim", "filters",
                     "log_every", "sample_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be positive, "
                                  f"got {getattr(self, name)}")
        if self.batch_size % self.devices:
            raise ConfigError(f"batch size {self.batch_size} is not divisible by the number of "
                              f"devices {self.devices}")
        if self.penalty == "clip" and not self.clip_value > 0:
            raise ConfigError(f"clip value must be positive, got {self.clip_value}")
        if self.optimizer not in (None, "rmsprop", "adam"):
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose rmsprop or adam")
        if self.jit_compile not in ("auto", "on", "off"):
            raise ConfigError(f"jit-compile must be auto, on or off, got {self.jit_compile!r}")

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in fields})

    def differences(self, other):
        """Names of the settings, other than resumable ones, where ``other`` differs."""
        return [f.name for f in dataclasses.fields(self)
                if f.name not in self.RESUMABLE and getattr(self, f.name) != getattr(other, f.name)]


def make_optimizer(name, penalty):
    """A fresh optimizer called ``name`` at the learning rate of ``penalty``'s paper."""
    import keras

    rate = {"clip": PAPER_RMSPROP, "gp": GP_ADAM}.get(penalty, DCGAN_ADAM)["learning_rate"]
    if name == "rmsprop":
        return keras.optimizers.RMSprop(rate, rho=PAPER_RMSPROP["rho"],
                                        epsilon=PAPER_RMSPROP["epsilon"])
    return keras.optimizers.Adam(rate, beta_1=0.5, beta_2=0.999, epsilon=1e-8)


def critic_iterations(generator_iteration, n_critic=5, boost=True):
    """How many critic iterations precede generator iteration ``generator_iteration`` (0-based)."""
    if boost and (generator_iteration < BOOST_FIRST or generator_iteration % BOOST_EVERY == 0):
        return max(BOOST_CRITIC_ITERATIONS, n_critic)
    return n_critic
