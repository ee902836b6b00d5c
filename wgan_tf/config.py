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
# The WGAN-GP toy code (gan_toy.py): Adam(1e-4, beta1 0.5, beta2 0.9), lambda 0.1, batch 256.
TOY_GP_ADAM = dict(learning_rate=1e-4, beta_1=0.5, beta_2=0.9, epsilon=1e-8)
TOY_GP_WEIGHT = 0.1
TOY_BATCH_SIZE = 256
# Radford et al. (2016), DCGAN: the standard-GAN baseline's optimizer.
DCGAN_ADAM = dict(learning_rate=2e-4, beta_1=0.5, beta_2=0.999, epsilon=1e-8)
# An Adam swapped in for RMSProp (--optimizer adam with clipping): the momentum the paper found
# unstable with weight clipping.
SWAPPED_ADAM = dict(beta_1=0.5, beta_2=0.999, epsilon=1e-8)
# The WGAN-GP paper's conditional model (gan_cifar_resnet.py: ACGAN_SCALE, ACGAN_SCALE_G): the
# auxiliary classifier's cross-entropy weighs 1 in the critic's loss (on real images) and 0.1 in
# the generator's (on its samples of the classes asked for).
CLASS_WEIGHT_CRITIC = 1.0
CLASS_WEIGHT_GENERATOR = 0.1
# The reference code's "critic boost": 100 critic iterations for the first 25 generator
# iterations and every 500th.
BOOST_CRITIC_ITERATIONS = 100
BOOST_FIRST = 25
BOOST_EVERY = 500
# Multi-worker jobs: seconds a collective waits for the other workers (--collective-timeout). It
# must exceed any pause of one worker that the others wait through (the chief's saves, the first
# step's tracing); a worker whose process is gone is noticed sooner, by the missing heartbeat.
COLLECTIVE_TIMEOUT = 600.0

# Wasserstein auto-encoders (Tolstikhin et al. 2018), the official MNIST setting (tolstikhin/wae,
# configs.py): Adam(1e-3, beta1 0.5) for the encoder and decoder, Adam(5e-4, beta1 0.5) for WAE-GAN's
# latent adversary, lambda 10, d_z 8, batch 100, 1024 filters, the learning rate halved at epoch 30
# and divided by 5 more at 50 (and by 10 more at 100: wae.py's 'manual' schedule).
WAE_ADAM = dict(learning_rate=1e-3, beta_1=0.5, beta_2=0.999, epsilon=1e-8)
WAE_ADVERSARY_LEARNING_RATE = 5e-4
WAE_LAMBDA = 10.0
WAE_LATENT_DIM = 8
WAE_BATCH_SIZE = 100
WAE_FILTERS = 1024
LR_DECAY_EPOCHS = (30, 50, 100)
LR_DECAY_FACTORS = (1.0, 0.5, 0.1, 0.01)
# The VAE baseline: the ELBO's KL term, weight 1, next to the same reconstruction cost.
VAE_KL_WEIGHT = 1.0
# Images per built-in dataset, for the learning-rate schedule's epoch (wgan_tf.data.builtin):
# digits:test is every fifth digit (the digits classifier's held-out set), digits:train the rest.
DATASET_SIZES = {"digits": 1797, "digits:train": 1437, "digits:test": 360}

# --precision (wgan_tf.precision) and --augment's DiffAugment policies (wgan_tf.augment).
PRECISIONS = ("float32", "bfloat16", "float16")
CRITIC_NORMALIZATIONS = ("batch", "layer", "none")
# --conditioning: how a conditional critic takes the class, the first the default
# (wgan_tf.models.dcgan_critic).
CONDITIONINGS = ("projection", "acgan")

# --recipe: a named group of defaults; a flag the user gives wins over its recipe's value, and
# config.json records the values used. "paper": every default is the papers'. "fast": the most
# quality per CPU-minute on photographs (folder: and TFDS image sets), chosen by
# experiments/recipes.py (docs/RESULTS.md, "Quality per CPU-minute").
RECIPES = {
    "paper": {},
    "fast": dict(penalty="gp", n_critic=1, optimizer="adam", learning_rate=4e-4,
                 generator_learning_rate=1e-4, beta_1=0.0, beta_2=0.9, penalty_every=4,
                 drift=1e-3, critic_normalization="none", filters=32, precision="bfloat16",
                 ema=0.973, augment="color,translation,cutout"),
}
# "fast"'s EMA: a half-life of 25 generator iterations (0.5 ** (1 / 25) = 0.973). Its generator's
# quality swings within tens of iterations and between checkpoints; a short average follows the
# swing and is ahead of the raw generator's mean over it (not of every point), where 0.999 (a
# half-life of ~400 iterations late in a run) averaged across the swings and fell behind by up to
# 2x (experiments/ema.py --continue; docs/RESULTS.md, "The generator EMA, diagnosed").
AUGMENT_POLICIES = ("color", "translation", "cutout")

# --model: the family, and the penalties (--penalty) it takes, the first being its default.
PENALTIES = {"wgan": ("clip", "gp"), "gan": ("none",), "wae": ("mmd", "gan"), "vae": ("none",)}
AUTOENCODERS = ("wae", "vae")


GENERATOR_CHOICES = ("ema", "raw")


def sampler_network(run_config, generator=None):
    """The network of a run (``run_config``: its config.json) that maps latents to samples, by its
    run-directory name: ``decoder`` for auto-encoders; for GANs the generator's EMA
    (``generator_ema``) where the run keeps one, else ``generator``. ``generator`` ("ema" or
    "raw", the ``--generator`` of export, evaluate and explain) asks for one of them."""
    if run_config.get("model", "wgan") in AUTOENCODERS:
        if generator is not None:
            raise ConfigError("--generator is for GANs; an auto-encoder samples with its decoder")
        return "decoder"
    if generator not in (None, *GENERATOR_CHOICES):
        raise ConfigError(f"--generator must be ema or raw, got {generator!r}")
    if generator == "ema" and not run_config.get("ema"):
        raise ConfigError("this run keeps no generator EMA (it was trained without --ema); "
                          "use --generator raw")
    return "generator_ema" if run_config.get("ema") and generator != "raw" else "generator"


@dataclasses.dataclass
class TrainConfig:
    """A run's settings. ``None`` means "the default for this model, penalty and dataset", resolved
    when the config is made, so ``config.json`` records the values a run actually used."""

    # "wgan" (the paper), "gan" (its standard-GAN baseline, DCGAN-style), "wae" (Wasserstein
    # auto-encoder) or "vae" (its VAE baseline).
    model: str = "wgan"
    dataset: str = "digits"
    arch: str = "dcgan"
    # None: the family's first in PENALTIES ("clip", Algorithm 1, for wgan).
    penalty: Optional[str] = None
    image_size: int = 64
    channels: int = 3
    # None: 100, or 2 on the 2-D toy datasets (as the WGAN-GP toy code); 8 for auto-encoders.
    latent_dim: Optional[int] = None
    # None: 64 (DCGAN base filters); 1024 for auto-encoders (their widest layer).
    filters: Optional[int] = None
    # None: 64, or 256 on the toys; 100 for auto-encoders. The global batch, split over replicas.
    batch_size: Optional[int] = None
    # None: 5 (Algorithm 1) for wgan, 1 (DCGAN) for the GAN baseline.
    n_critic: Optional[int] = None
    clip_value: float = 0.01
    # None: 10, or 0.1 on the toys.
    gp_weight: Optional[float] = None
    # None: on for weight clipping (as the WGAN reference code), off for the gradient penalty
    # (as the WGAN-GP reference code).
    critic_boost: Optional[bool] = None
    # The gradient penalty's variants. penalty_every: computed on every k-th critic iteration
    # only, with weight k x gp_weight (lazy regularisation, Karras et al. 2020); None is 1.
    # gp_target: the gradient norm it pulls towards, None is 1 (WGAN-GP); 0 is the zero-centred
    # penalty (Thanh-Tung et al. 2019). drift: ProGAN's drift * E[critic(x)^2] on real images,
    # which keeps the scores near 0; None is 0.
    penalty_every: Optional[int] = None
    gp_target: Optional[float] = None
    drift: Optional[float] = None
    # The DCGAN critic's normalisation: None is "layer" with the gradient penalty (WGAN-GP),
    # "batch" otherwise (the paper's); or "none".
    critic_normalization: Optional[str] = None
    # A named group of defaults (RECIPES): "paper" (every default the papers') or "fast".
    recipe: str = "paper"
    # None: the paper's for the model, penalty and dataset (``paper_optimizer``). Naming the other
    # one ("rmsprop" with gp, "adam" with clip) keeps the paper's learning rate; Adam then gets
    # beta1 0.5, the momentum the WGAN paper found unstable with clipping.
    optimizer: Optional[str] = None
    learning_rate: Optional[float] = None
    # The generator's own learning rate (two time-scale updates, Heusel et al. 2017); None: the
    # same as the critic's.
    generator_learning_rate: Optional[float] = None
    beta_1: Optional[float] = None
    beta_2: Optional[float] = None
    # Auto-encoders only (None elsewhere). lambda, the latent penalty's weight: None is 10 for wae,
    # 1 (the ELBO's KL) for vae.
    penalty_weight: Optional[float] = None
    # WAE-GAN's latent adversary: None is 5e-4 (Adam with beta_1 and beta_2 as above).
    adversary_learning_rate: Optional[float] = None
    # Steps per epoch of the learning-rate schedule (LR_DECAY_EPOCHS). None: the dataset's size
    # over the batch size where it is known (DATASET_SIZES), else 0: a constant learning rate.
    epoch_steps: Optional[int] = None
    # Mixed precision (wgan_tf.precision): None is "float32" (the paper's); "bfloat16", "float16".
    precision: Optional[str] = None
    # Generator EMA decay (wgan_tf.ema), e.g. 0.999; None: no EMA (the paper's).
    ema: Optional[float] = None
    # DiffAugment policies (wgan_tf.augment), e.g. "color,translation,cutout"; None: none.
    augment: Optional[str] = None
    # Lookahead on both players (wgan_tf.lookahead): every this many generator iterations the
    # weights go halfway back to their slow copies; None (or 0): none (the paper's).
    lookahead: Optional[int] = None
    # Sample quality measured every this many steps into metrics.csv (wgan_tf.quality), on
    # eval_num samples; 0: never.
    eval_every: int = 0
    eval_num: int = 2000
    # A conditional model on labelled data (class-conditional batch norm in the generator);
    # class_names (label order) are the dataset's, filled in when the run starts.
    conditional: bool = False
    class_names: Optional[list] = None
    # How the critic takes the class (wgan_tf.models.dcgan_critic): None is "projection" for a
    # conditional run (Miyato & Koyama 2018); "acgan" is the WGAN-GP paper's auxiliary classifier.
    conditioning: Optional[str] = None
    # acgan: the auxiliary classifier's cross-entropy weights, in the critic's loss (on real
    # images) and in the generator's (on its samples of the classes asked for); None is the
    # paper's 1 and 0.1.
    class_weight: Optional[float] = None
    generated_class_weight: Optional[float] = None
    # Generator iterations per call of the training step: fit's callbacks then run once per call.
    steps_per_execution: int = 1
    steps: int = 100_000
    seed: int = 0
    devices: int = 1
    log_every: int = 10
    sample_every: int = 100
    checkpoint_every: int = 500
    jit_compile: str = "auto"

    # Settings that may change when a run is resumed; the rest define the run.
    RESUMABLE = ("steps", "devices", "log_every", "sample_every", "checkpoint_every",
                 "jit_compile", "eval_every", "eval_num", "steps_per_execution")

    @property
    def toy(self):
        return self.dataset.startswith("toy:")

    def __post_init__(self):
        if self.model not in PENALTIES:
            raise ConfigError(f"unknown model {self.model!r}; choose one of "
                              f"{', '.join(PENALTIES)}")
        if self.recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {self.recipe!r}; choose one of "
                              f"{', '.join(RECIPES)}")
        for name, value in RECIPES[self.recipe].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.penalty is None:
            self.penalty = PENALTIES[self.model][0]
        defaults = dict(latent_dim=2 if self.toy else 100,
                        filters=64,
                        batch_size=TOY_BATCH_SIZE if self.toy else 64,
                        n_critic=5 if self.model == "wgan" else 1,
                        gp_weight=TOY_GP_WEIGHT if self.toy else 10.0,
                        critic_boost=self.penalty == "clip",
                        penalty_every=1, gp_target=1.0, drift=0.0,
                        critic_normalization="layer" if self.penalty == "gp" else "batch",
                        precision="float32")
        if self.autoencoder:
            defaults.update(self._autoencoder_defaults())
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        self.validate()
        self._resolve_optimizer()

    @property
    def autoencoder(self):
        return self.model in AUTOENCODERS

    def _autoencoder_defaults(self):
        batch_size = self.batch_size or WAE_BATCH_SIZE
        return dict(latent_dim=WAE_LATENT_DIM, filters=WAE_FILTERS, batch_size=WAE_BATCH_SIZE,
                    penalty_weight=WAE_LAMBDA if self.model == "wae" else VAE_KL_WEIGHT,
                    adversary_learning_rate=(WAE_ADVERSARY_LEARNING_RATE if self.penalty == "gan"
                                             else None),
                    # wae.py: batches_num = data.num_points / batch_size (integer division)
                    epoch_steps=DATASET_SIZES.get(self.dataset, 0) // batch_size)

    def _resolve_optimizer(self):
        paper_name, paper = paper_optimizer(self.model, self.penalty, self.toy)
        name = self.optimizer or paper_name
        settings = paper if name == paper_name else dict(
            SWAPPED_ADAM if name == "adam" else {}, learning_rate=paper["learning_rate"])
        self.optimizer = name
        for key in ("learning_rate", "beta_1", "beta_2"):
            if getattr(self, key) is None:
                setattr(self, key, settings.get(key))
        if self.generator_learning_rate is None and not self.autoencoder:
            self.generator_learning_rate = self.learning_rate
        if name == "rmsprop" and (self.beta_1, self.beta_2) != (None, None):
            raise ConfigError("--beta-1 and --beta-2 are Adam's; RMSProp takes neither")

    def validate(self):
        choices = PENALTIES[self.model]
        if self.penalty not in choices:
            if len(choices) == 1:
                raise ConfigError(f"--model {self.model} takes no --penalty, got --penalty "
                                  f"{self.penalty}")
            raise ConfigError(f"unknown penalty {self.penalty!r} for --model {self.model}; "
                              f"choose {' or '.join(choices)}")
        if self.autoencoder:
            self._validate_autoencoder()
        elif (self.penalty_weight, self.adversary_learning_rate, self.epoch_steps) != (None,) * 3:
            raise ConfigError("--penalty-weight, --adversary-learning-rate and --epoch-steps are "
                              "for auto-encoders (--model wae or vae)")
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
        if not self.gp_weight >= 0:
            raise ConfigError(f"gp-weight must be >= 0, got {self.gp_weight}")
        if self.optimizer not in (None, "rmsprop", "adam"):
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose rmsprop or adam")
        for name in ("learning_rate", "generator_learning_rate"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"{name.replace('_', '-')} must be positive, got {value}")
        if self.generator_learning_rate is not None and self.autoencoder:
            raise ConfigError("--generator-learning-rate is for GANs (--model wgan or gan)")
        self._validate_penalty_options()
        for name in ("beta_1", "beta_2"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be in [0, 1), got {value}")
        if self.jit_compile not in ("auto", "on", "off"):
            raise ConfigError(f"jit-compile must be auto, on or off, got {self.jit_compile!r}")
        self._validate_quality_options()

    def _validate_penalty_options(self):
        if self.penalty_every < 1:
            raise ConfigError(f"penalty-every must be positive, got {self.penalty_every}")
        if not (self.gp_target >= 0 and self.drift >= 0):
            raise ConfigError(f"gp-target and drift must be >= 0, got {self.gp_target} and "
                              f"{self.drift}")
        if self.penalty != "gp" and (self.penalty_every, self.gp_target) != (1, 1.0):
            raise ConfigError("--penalty-every and --gp-target shape the gradient penalty: they "
                              "need --penalty gp")
        if self.drift and (self.model != "wgan"):
            raise ConfigError("--drift is for the Wasserstein critic (--model wgan)")
        if self.critic_normalization not in CRITIC_NORMALIZATIONS:
            raise ConfigError(f"unknown critic normalization {self.critic_normalization!r}; "
                              f"choose one of {', '.join(CRITIC_NORMALIZATIONS)}")
        if self.critic_normalization == "batch" and self.penalty == "gp":
            raise ConfigError("--critic-normalization batch makes each sample's gradient penalty "
                              "depend on the others (WGAN-GP, Sec. 4): use layer or none")

    def _validate_quality_options(self):
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; choose one of "
                              f"{', '.join(PRECISIONS)}")
        if self.ema is not None and not 0 <= self.ema < 1:
            raise ConfigError(f"ema must be a decay in (0, 1), e.g. 0.999 (0: none), got "
                              f"{self.ema}")
        self.ema = self.ema or None
        if self.lookahead is not None and self.lookahead < 0:
            raise ConfigError(f"lookahead must be a period of generator iterations >= 1 (0: "
                              f"none), got {self.lookahead}")
        self.lookahead = self.lookahead or None
        if (self.ema or self.augment or self.conditional or self.lookahead) and self.autoencoder:
            raise ConfigError("--ema, --augment, --lookahead and --conditional are for GANs "
                              "(--model wgan or gan)")
        self._validate_conditioning()
        if self.conditional and self.arch != "dcgan":
            raise ConfigError(f"--conditional needs --arch dcgan (the WGAN-GP paper's conditional "
                              f"batch norm), got --arch {self.arch}")
        policies = parse_augment(self.augment)
        self.augment = ",".join(policies) or None
        if self.eval_every < 0 or self.eval_num < 2:
            raise ConfigError(f"eval-every must be >= 0 and eval-num >= 2, got {self.eval_every} "
                              f"and {self.eval_num}")
        if self.steps_per_execution < 1 or self.log_every % self.steps_per_execution:
            raise ConfigError(f"steps-per-execution ({self.steps_per_execution}) must divide "
                              f"log-every ({self.log_every})")
        if self.eval_every % self.log_every:
            raise ConfigError(f"eval-every ({self.eval_every}) must be a multiple of log-every "
                              f"({self.log_every}): measures land in the rows of metrics.csv")

    def _validate_conditioning(self):
        weights = (self.class_weight, self.generated_class_weight)
        if not self.conditional:
            if self.conditioning is not None or weights != (None, None):
                raise ConfigError("--conditioning, --class-weight and --generated-class-weight "
                                  "are for conditional runs (--conditional)")
            return
        self.conditioning = self.conditioning or CONDITIONINGS[0]
        if self.conditioning not in CONDITIONINGS:
            raise ConfigError(f"unknown conditioning {self.conditioning!r}; choose one of "
                              f"{', '.join(CONDITIONINGS)}")
        if self.conditioning != "acgan":
            if weights != (None, None):
                raise ConfigError("--class-weight and --generated-class-weight weigh the AC-GAN "
                                  "head's cross-entropy: they need --conditioning acgan")
            return
        if self.class_weight is None:
            self.class_weight = CLASS_WEIGHT_CRITIC
        if self.generated_class_weight is None:
            self.generated_class_weight = CLASS_WEIGHT_GENERATOR
        if not (self.class_weight >= 0 and self.generated_class_weight >= 0):
            raise ConfigError("class-weight and generated-class-weight must be >= 0")

    def _validate_autoencoder(self):
        if self.toy:
            raise ConfigError(f"--model {self.model} trains on images, not the 2-D points of "
                              f"{self.dataset}")
        if self.arch != "dcgan":
            raise ConfigError(f"--model {self.model} has the official WAE networks (dcgan encoder, "
                              f"dcgan_mod decoder); --arch {self.arch} is a GAN generator's")
        if not self.penalty_weight >= 0:
            raise ConfigError(f"penalty-weight must be >= 0, got {self.penalty_weight}")
        if self.adversary_learning_rate is not None and not self.adversary_learning_rate > 0:
            raise ConfigError(f"adversary-learning-rate must be positive, got "
                              f"{self.adversary_learning_rate}")
        if self.adversary_learning_rate is not None and self.penalty != "gan":
            raise ConfigError("--adversary-learning-rate is for --model wae --penalty gan")
        if self.epoch_steps < 0:
            raise ConfigError(f"epoch-steps must be >= 0, got {self.epoch_steps}")

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        values = json.loads(text)
        # Runs made before --model: the baseline was --objective gan.
        if values.pop("objective", None) == "gan":
            values.setdefault("model", "gan")
        # Conditional runs made before --conditioning had the AC-GAN critic.
        if values.get("conditional") and "conditioning" not in values:
            values["conditioning"] = "acgan"
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in fields})

    def differences(self, other):
        """Names of the settings, other than resumable ones, where ``other`` differs. Lookahead
        may be switched on when a run that has none resumes (``wgan_tf.lookahead``)."""
        switched_on = self.lookahead is None and other.lookahead is not None
        return [f.name for f in dataclasses.fields(self)
                if f.name not in self.RESUMABLE and getattr(self, f.name) != getattr(other, f.name)
                and not (f.name == "lookahead" and switched_on)]


def parse_augment(policy):
    """``"color,translation,cutout"`` -> the policies in their order of application; None, ""
    or "none" -> ()."""
    if policy is None or policy.strip().lower() in ("", "none"):
        return ()
    names = [name.strip() for name in policy.split(",")]
    unknown = [name for name in names if name not in AUGMENT_POLICIES]
    if unknown or len(set(names)) != len(names):
        raise ConfigError(f"--augment takes a comma-separated list of "
                          f"{', '.join(AUGMENT_POLICIES)} (each once), got {policy!r}")
    return tuple(name for name in AUGMENT_POLICIES if name in names)


def paper_optimizer(model, penalty, toy=False):
    """(name, settings) of the optimizer the model's paper trains both players with (for
    auto-encoders: the encoder and decoder's)."""
    if model in AUTOENCODERS:
        return "adam", WAE_ADAM
    if model == "gan":
        return "adam", DCGAN_ADAM
    if penalty == "gp":
        return "adam", TOY_GP_ADAM if toy else GP_ADAM
    return "rmsprop", PAPER_RMSPROP


def make_optimizer(config, learning_rate=None):
    """A fresh optimizer with ``config``'s resolved settings (one per player); ``learning_rate``
    (a number or a Keras schedule) replaces ``config.learning_rate``."""
    import keras

    learning_rate = config.learning_rate if learning_rate is None else learning_rate
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, rho=PAPER_RMSPROP["rho"],
                                        epsilon=PAPER_RMSPROP["epsilon"])
    return keras.optimizers.Adam(learning_rate, beta_1=config.beta_1, beta_2=config.beta_2,
                                 epsilon=1e-8)


def learning_rate_schedule(learning_rate, epoch_steps):
    """The official WAE schedule (wae.py, lr_schedule 'manual'): the rate times LR_DECAY_FACTORS,
    changing at the start of the epochs in LR_DECAY_EPOCHS, as a Keras schedule of the optimizer's
    step; constant when ``epoch_steps`` is 0."""
    import keras

    if not epoch_steps:
        return learning_rate
    # PiecewiseConstantDecay keeps value i while step <= boundary i: epoch e starts at step e * E.
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [e * epoch_steps - 1 for e in LR_DECAY_EPOCHS],
        [learning_rate * f for f in LR_DECAY_FACTORS])


def critic_iterations(generator_iteration, n_critic=5, boost=True):
    """How many critic iterations precede generator iteration ``generator_iteration`` (0-based)."""
    if boost and _boosted(generator_iteration):
        return max(BOOST_CRITIC_ITERATIONS, n_critic)
    return n_critic


def critic_iterations_before(generator_iteration, n_critic=5, boost=True):
    """Critic iterations a run has made when generator iteration ``generator_iteration`` (0-based)
    is about to start: the sum of ``critic_iterations`` over the earlier ones."""
    g = generator_iteration
    total = g * n_critic
    if boost and g > 0:
        first_periodic = -(-BOOST_FIRST // BOOST_EVERY) * BOOST_EVERY  # a multiple >= BOOST_FIRST
        boosted = min(g, BOOST_FIRST) + len(range(first_periodic, g, BOOST_EVERY))
        total += boosted * (max(BOOST_CRITIC_ITERATIONS, n_critic) - n_critic)
    return total


def _boosted(generator_iteration):
    return generator_iteration < BOOST_FIRST or generator_iteration % BOOST_EVERY == 0
