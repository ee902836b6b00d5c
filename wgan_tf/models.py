"""The WGAN paper's networks as Keras functional models.

The DCGAN pair follows the paper's reference code (``DCGAN_G`` / ``DCGAN_D`` in
martinarjovsky/WassersteinGAN): filters double towards the 4x4 end, 4x4 kernels with stride 2,
batch norm everywhere but the critic's first layer, N(0, 0.02) weights and N(1, 0.02) batch-norm
scales. The critic ends in one unbounded score per sample: no sigmoid.

Other generators from the paper: the DCGAN generator without batch norm and with a constant number
of filters (Fig. 6) and a 4-layer ReLU MLP with 512 units (Fig. 7). The MLP pair also takes 2-D
points, for the WGAN-GP paper's toy distributions.
"""
import math

import keras
import tensorflow as tf
from keras import layers

from wgan_tf import batchnorm, convolution
from wgan_tf.config import CONDITIONINGS
from wgan_tf.errors import ConfigError

ARCHITECTURES = ("dcgan", "dcgan-nobn", "mlp")

# PyTorch's BatchNorm2d defaults, which the reference code trains with (Keras's are 0.99 / 1e-3).
_BN = dict(momentum=0.9, epsilon=1e-5, synchronized=True)


def _conv_init():
    return keras.initializers.RandomNormal(0.0, 0.02)


@keras.saving.register_keras_serializable(package="wgan_tf")
class BatchNormalization(layers.BatchNormalization):
    """Keras's batch norm, computed by one arithmetic on one replica and on several
    (``wgan_tf.batchnorm``): the global batch's moments from float32 sums all-reduced across
    replicas, then TensorFlow's fused kernel normalising with them (NHWC, one oneDNN primitive, the
    bfloat16 activation kept as it is, float32 scale, offset and statistics), with the full batch-norm
    gradient. One replica is the same computation without the all-reduce, so ``--devices N``
    computes one device's step to round-off. Same variables, and the same moving-average update
    with the batch's biased variance, as Keras's.

    Keras 3's own path casts a bfloat16 or float16 activation to float32 and back and normalises in
    several ops: a quarter of a bfloat16 critic update's time (benchmarks/train_throughput.py).
    """

    def call(self, inputs, training=None, mask=None):
        if mask is not None or self.renorm or self.axis not in (-1, 3) or inputs.shape.rank != 4:
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        scale = tf.ones([channels]) if self.gamma is None else tf.convert_to_tensor(self.gamma)
        offset = tf.zeros([channels]) if self.beta is None else tf.convert_to_tensor(self.beta)
        if training and self.trainable:
            y, mean, variance = batchnorm.normalize_batch(inputs, scale, offset, self.epsilon)
            for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
                moving.assign(moving * self.momentum + batch * (1.0 - self.momentum))
        else:
            y = batchnorm.normalize(inputs, scale, offset, tf.convert_to_tensor(self.moving_mean),
                                    tf.convert_to_tensor(self.moving_variance), self.epsilon)
        return tf.cast(y, self.compute_dtype)


def _batch_norm(name):
    # synchronized=True: under MirroredStrategy the statistics are those of the global batch, so
    # one and several replicas compute the same step.
    return BatchNormalization(
        gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02), name=name, **_BN
    )


def check_image_size(image_size):
    if image_size < 16 or image_size & (image_size - 1):
        raise ConfigError(f"image size must be a power of two >= 16, got {image_size}")


@keras.saving.register_keras_serializable(package="wgan_tf")
class ConditionalBatchNormalization(layers.Layer):
    """Batch norm whose scale and offset are the class's (de Vries et al. 2017; Dumoulin et al.
    2017): ``[x, labels] -> normalize(x) * gamma[label] + beta[label]``. The normalisation is the
    generator's synchronized batch norm without its own scale and offset; gamma starts at
    N(1, 0.02) and beta at 0 for every class, as the unconditional generator's batch norm."""

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.normalize = BatchNormalization(center=False, scale=False, name="normalize", **_BN)

    def build(self, input_shape):
        shape, _ = input_shape
        self.normalize.build(shape)
        self.gamma = self.add_weight(
            name="gamma", shape=(self.num_classes, shape[-1]),
            initializer=keras.initializers.RandomNormal(1.0, 0.02))
        self.beta = self.add_weight(name="beta", shape=(self.num_classes, shape[-1]),
                                    initializer="zeros")

    def call(self, inputs, training=None):
        x, labels = inputs
        labels = keras.ops.cast(keras.ops.reshape(labels, [-1]), "int32")
        gamma = keras.ops.take(self.gamma, labels, axis=0)[:, None, None, :]
        beta = keras.ops.take(self.beta, labels, axis=0)[:, None, None, :]
        return self.normalize(x, training=training) * gamma + beta

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


def is_conditional(generator):
    """Whether a generator takes class labels beside its latent (inputs ``latent``, ``labels``)."""
    return len(generator.inputs) == 2


def batch_norms(network):
    """Every batch-norm layer of ``network``, nested ones included."""
    return [layer for layer in network._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, layers.BatchNormalization)]


def critic_conditioning(critic):
    """How a critic takes the class: "projection" (inputs ``images``, ``labels``), "acgan"
    (outputs score and class logits) or None (unconditional)."""
    if len(critic.inputs) == 2:
        return "projection"
    return "acgan" if len(critic.outputs) == 2 else None


def latent_dim(generator):
    """The size of a generator's latent vector (its first input)."""
    return generator.inputs[0].shape[-1]


def dcgan_generator(image_size=64, channels=3, latent_dim=100, filters=64, batch_norm=True,
                    constant_filters=False, num_classes=None, class_input=False,
                    name="generator"):
    """DCGAN generator: latent [B, latent_dim] -> images [B, size, size, channels] in [-1, 1].

    ``constant_filters`` with ``batch_norm=False`` is the paper's Fig. 6 generator: every layer has
    ``filters`` filters instead of doubling them towards the 4x4 start.

    ``num_classes``: a conditional generator, ``[latent, labels] -> images`` (``labels`` int32
    ``[B]``), conditioned as the WGAN-GP paper's conditional model (its code's ``cond_batchnorm``):
    every batch norm's scale and offset are the class's (``ConditionalBatchNormalization``), so the
    class steers every layer. ``class_input``: the class also enters at the input, a learned
    embedding (N(0, 1), as long as the latent) beside the latent (Mirza & Osindero 2014; BigGAN's
    shared class embedding), so that the first layer already draws the class.
    """
    check_image_size(image_size)
    if num_classes is not None and not batch_norm:
        raise ConfigError("a conditional generator is conditioned through its batch norm: it "
                          "needs --arch dcgan")
    n_up = int(math.log2(image_size)) - 3  # stride-2 layers between 4x4 and the output layer
    width = filters if constant_filters else filters * 2 ** n_up
    z = keras.Input((latent_dim,), name="latent")
    labels = keras.Input((), dtype="int32", name="labels") if num_classes else None
    x = z
    if num_classes and class_input:
        embedded = layers.Embedding(num_classes, latent_dim, name="class_input",
                                    embeddings_initializer=keras.initializers.RandomNormal(
                                        0.0, 1.0))(labels)
        x = layers.Concatenate(name="latent_and_class")([z, embedded])
    x = layers.Reshape((1, 1, x.shape[-1]))(x)
    x = convolution.Conv2DTranspose(width, 4, padding="valid", use_bias=False,
                               kernel_initializer=_conv_init(), name="project")(x)
    for i in range(n_up + 1):
        if batch_norm and num_classes:
            x = ConditionalBatchNormalization(num_classes, name=f"cbn{i}")([x, labels])
        elif batch_norm:
            x = _batch_norm(f"bn{i}")(x)
        x = layers.ReLU()(x)
        if i == n_up:
            break
        if not constant_filters:
            width //= 2
        x = convolution.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False,
                                   kernel_initializer=_conv_init(), name=f"up{i}")(x)
    # The tanh computes in float32 under any precision (wgan_tf.precision): a bfloat16 image
    # would be rounded to about one grey level. The last convolution computes in the policy's
    # precision, as under PyTorch's autocast: rounding its output to bfloat16's 8 bits moves a
    # pixel by at most 0.11 grey levels after the tanh (|x| tanh'(x) <= 0.45), and in float32
    # it was the slowest layer of the bfloat16 generator (docs/BENCHMARKS.md, issue 23).
    x = convolution.Conv2DTranspose(channels, 4, strides=2, padding="same", use_bias=False,
                               kernel_initializer=_conv_init(), name="to_image")(x)
    images = layers.Activation("tanh", dtype="float32", name="images")(x)
    return keras.Model([z, labels] if num_classes else z, images, name=name)


def dcgan_critic(image_size=64, channels=3, filters=64, normalization="batch", num_classes=None,
                 conditioning="projection", name="critic"):
    """DCGAN critic: images -> one unbounded score per sample, shape [B, 1].

    ``normalization``: "batch" (the paper's), "layer" (WGAN-GP: batch norm makes the gradient
    penalty of one sample depend on the others) or None.

    ``num_classes``, a conditional critic, by ``conditioning``:

    - "projection" (Miyato & Koyama 2018, "cGANs with Projection Discriminator"; SNGAN's, BigGAN's):
      ``[images, labels] -> score [B, 1]``, score(x, y) = psi(phi(x)) + <embed(y), phi(x)> with
      phi(x) the last 4x4 layer's features (flattened) and psi the unconditional score layer. The
      class is inside the score, so the Wasserstein estimate is the class-conditional one.
    - "acgan" (AC-GAN, Odena et al. 2017; the WGAN-GP paper's conditional model): an auxiliary
      classifier beside the score, ``images -> [score [B, 1], class logits [B, classes]]``, both
      from the same features; the critic's score itself stays unconditional.
    """
    if conditioning not in CONDITIONINGS:
        raise ConfigError(f"unknown conditioning {conditioning!r}; choose one of "
                          f"{', '.join(CONDITIONINGS)}")
    check_image_size(image_size)
    if normalization not in ("batch", "layer", None):
        raise ConfigError(f"unknown critic normalization {normalization!r}")
    images = keras.Input((image_size, image_size, channels), name="images")
    x = convolution.Conv2D(filters, 4, strides=2, padding="same", use_bias=False,
                      kernel_initializer=_conv_init(), name="down0")(images)
    x = layers.LeakyReLU(0.2)(x)
    size, width = image_size // 2, filters
    i = 1
    while size > 4:
        width *= 2
        x = convolution.Conv2D(width, 4, strides=2, padding="same", use_bias=False,
                          kernel_initializer=_conv_init(), name=f"down{i}")(x)
        if normalization == "batch":
            x = _batch_norm(f"bn{i}")(x)
        elif normalization == "layer":
            x = layers.LayerNormalization(axis=[1, 2, 3], epsilon=1e-5, name=f"ln{i}")(x)
        x = layers.LeakyReLU(0.2)(x)
        size //= 2
        i += 1
    features = x
    x = convolution.Conv2D(1, 4, padding="valid", use_bias=False, kernel_initializer=_conv_init(),
                      name="score", dtype="float32")(features)
    score = layers.Flatten(dtype="float32")(x)
    if not num_classes:
        return keras.Model(images, score, name=name)
    if conditioning == "projection":
        labels = keras.Input((), dtype="int32", name="labels")
        phi = layers.Flatten(dtype="float32", name="features")(features)
        embedded = layers.Embedding(num_classes, phi.shape[-1], embeddings_initializer=_conv_init(),
                                    dtype="float32", name="class_embedding")(labels)
        projected = layers.Dot(axes=1, dtype="float32", name="projection")([phi, embedded])
        score = layers.Add(dtype="float32", name="conditional_score")([score, projected])
        return keras.Model([images, labels], score, name=name)
    logits = convolution.Conv2D(num_classes, 4, padding="valid", use_bias=False,
                           kernel_initializer=_conv_init(), name="classes",
                           dtype="float32")(features)
    return keras.Model(images, [score, layers.Flatten(dtype="float32")(logits)], name=name)


def mlp_generator(image_size=64, channels=3, latent_dim=100, units=512, output_shape=None,
                  name="generator"):
    """The paper's 4-layer ReLU MLP generator (``MLP_G``): three hidden ReLU layers, linear output.

    ``output_shape`` overrides the image shape, e.g. ``(2,)`` for toy 2-D points.
    """
    shape = tuple(output_shape) if output_shape else (image_size, image_size, channels)
    z = keras.Input((latent_dim,), name="latent")
    x = z
    for i in range(3):
        x = layers.Dense(units, activation="relu", name=f"hidden{i}")(x)
    x = layers.Dense(math.prod(shape), name="output", dtype="float32")(x)
    out = layers.Reshape(shape, dtype="float32", name="images")(x)
    return keras.Model(z, out, name=name)


def mlp_critic(image_size=64, channels=3, units=512, input_shape=None, name="critic"):
    """The paper's MLP critic (``MLP_D``): three hidden ReLU layers of ``units``, one linear score."""
    shape = tuple(input_shape) if input_shape else (image_size, image_size, channels)
    inputs = keras.Input(shape, name="images")
    x = layers.Flatten()(inputs)
    for i in range(3):
        x = layers.Dense(units, activation="relu", name=f"hidden{i}")(x)
    score = layers.Dense(1, dtype="float32", name="score")(x)
    return keras.Model(inputs, score, name=name)


def build_pair(arch="dcgan", image_size=64, channels=3, latent_dim=100, filters=64,
               critic_normalization="batch", point_dim=None, num_classes=None,
               conditioning="projection"):
    """(generator, critic) for an ``--arch`` name. ``point_dim`` builds the MLP pair for points.

    The critic is the paper's DCGAN critic for every image generator (the paper varies only the
    generator), and the MLP critic for points. ``num_classes``: the conditional pair (a
    conditional DCGAN generator, a critic conditioned by ``conditioning``: a projection or an
    auxiliary classifier).
    """
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if num_classes is not None:
        if arch != "dcgan" or point_dim is not None:
            raise ConfigError(f"--conditional needs --arch dcgan on images (the WGAN-GP "
                              f"paper's conditional batch norm), got --arch {arch}")
        # The projection model's generator also takes the class at its input: without it, the
        # class reached the generator only through the batch norms' per-class scales and
        # offsets, which Adam moves 1e-4 a step, and the projection critic's class signal went
        # unanswered (digits, 500 iterations: FD 213, no row its digit; with it FD 20, every
        # row its digit). The AC-GAN model stays the WGAN-GP paper's.
        return (dcgan_generator(image_size, channels, latent_dim, filters,
                                num_classes=num_classes,
                                class_input=conditioning == "projection"),
                dcgan_critic(image_size, channels, filters, critic_normalization, num_classes,
                             conditioning))
    if point_dim is not None:
        if arch != "mlp":
            raise ConfigError(f"toy 2-D data needs --arch mlp, got --arch {arch}")
        return (mlp_generator(latent_dim=latent_dim, output_shape=(point_dim,)),
                mlp_critic(input_shape=(point_dim,)))
    if arch == "mlp":
        generator = mlp_generator(image_size, channels, latent_dim)
    else:
        nobn = arch == "dcgan-nobn"
        generator = dcgan_generator(image_size, channels, latent_dim, filters,
                                    batch_norm=not nobn, constant_filters=nobn)
    return generator, dcgan_critic(image_size, channels, filters, critic_normalization)


# --- Networks for the papers' analysis experiments (experiments/critic_claims.py) -----------------

@keras.saving.register_keras_serializable(package="wgan_tf")
class ParallelLine(keras.layers.Layer):
    """g_theta(z) = (theta, Phi(z)): the WGAN paper's Example 1 generator. Phi, the standard normal
    CDF, maps the package's N(0, 1) latent to U[0, 1], so g_theta(Z) is uniform on the segment
    {theta} x [0, 1]; theta is the layer's only weight."""

    def __init__(self, theta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_theta = float(theta)

    def build(self, input_shape):
        self.theta = self.add_weight(name="theta", shape=(),
                                     initializer=keras.initializers.Constant(self.initial_theta))

    def call(self, latent):
        u = 0.5 * (1.0 + keras.ops.erf(latent[:, :1] / math.sqrt(2.0)))
        return keras.ops.concatenate([keras.ops.ones_like(u) * self.theta, u], axis=1)

    def get_config(self):
        return {**super().get_config(), "theta": self.initial_theta}


def parallel_line_generator(theta=1.0, name="generator"):
    """The one-parameter generator of the WGAN paper's Example 1 (Arjovsky et al. 2017, Sec. 2):
    a latent ``[B, 1]`` to points ``[B, 2]`` on the vertical segment at ``x = theta``."""
    latent = keras.Input((1,), name="latent")
    return keras.Model(latent, ParallelLine(theta, name="line")(latent), name=name)


def deep_mlp_critic(input_shape=(2,), depth=12, units=512, activation="relu", name="critic"):
    """A ``depth``-layer MLP critic without normalisation: WGAN-GP's Fig. 1b critic (Gulrajani et
    al. 2017, Sec. 3.2: 12-layer ReLU MLPs on the Swiss roll). Hidden layers are named
    ``hidden0`` ... (input side first), the score layer ``score``."""
    inputs = keras.Input(tuple(input_shape), name="points")
    x = layers.Flatten()(inputs)
    for i in range(depth):
        x = layers.Dense(units, activation=activation, name=f"hidden{i}")(x)
    return keras.Model(inputs, layers.Dense(1, dtype="float32", name="score")(x), name=name)


def deep_mlp_generator(latent_dim=2, output_shape=(2,), depth=12, units=512, activation="relu",
                       name="generator"):
    """The generator beside ``deep_mlp_critic``: ``depth`` hidden layers, no normalisation."""
    z = keras.Input((latent_dim,), name="latent")
    x = z
    for i in range(depth):
        x = layers.Dense(units, activation=activation, name=f"hidden{i}")(x)
    x = layers.Dense(math.prod(output_shape), name="output")(x)
    return keras.Model(z, layers.Reshape(tuple(output_shape), dtype="float32")(x), name=name)


@keras.saving.register_keras_serializable(package="wgan_tf")
def smooth_elu(x):
    """softplus(2x + 2) / 2 - 1: a smooth ELU, which WGAN-GP's random architectures use because
    the gradient penalty's gradient involves second derivatives (Gulrajani et al. 2017, App. D)."""
    return keras.ops.softplus(2.0 * x + 2.0) / 2.0 - 1.0


# WGAN-GP's Table 1 (Gulrajani et al. 2017, Sec. 5.1): the set its 200 random DCGAN variants are
# drawn from. Base filter counts are [32, 64, 128] there (32x32 ImageNet).
RANDOM_ARCHITECTURE_SET = {
    "nonlinearity": ("relu", "leaky_relu", "smooth_elu", "tanh"),
    "depth": (4, 8, 12, 20),
    "normalization": (True, False),
    "filters": (32, 64, 128),
}
_NONLINEARITIES = {"relu": "relu", "leaky_relu": lambda x: keras.ops.leaky_relu(x, 0.2),
                   "smooth_elu": smooth_elu, "tanh": "tanh"}


def _nonlinearity(name):
    if name not in _NONLINEARITIES:
        raise ConfigError(f"unknown nonlinearity {name!r}; choose one of "
                          f"{', '.join(_NONLINEARITIES)}")
    return layers.Activation(_NONLINEARITIES[name])


def _extra_layers(depth, base_depth):
    """How many stride-1 3x3 layers to add at (the lower, the higher) of the two inner
    resolutions so that the network has ``depth`` layers with kernels."""
    if depth < base_depth:
        raise ConfigError(f"depth must be at least {base_depth}, got {depth}")
    extra = depth - base_depth
    return extra // 2, extra - extra // 2


def dcgan_variant_generator(image_size=16, channels=1, latent_dim=100, depth=4, filters=32,
                            nonlinearity="relu", batch_norm=True, name="generator"):
    """A DCGAN generator varied along WGAN-GP's Table 1: ``depth`` layers with kernels (the
    DCGAN's, plus stride-1 3x3 convolutions shared between the two lowest resolutions), the
    ``nonlinearity`` after every hidden layer, batch norm or none. Only for 16x16 images (the
    DCGAN's three layers 1 -> 4 -> 8 -> 16); Glorot-uniform initialisation."""
    if image_size != 16:
        raise ConfigError(f"the DCGAN variants are built for 16x16 images, got {image_size}")
    at_4, at_8 = _extra_layers(depth, 3)
    z = keras.Input((latent_dim,), name="latent")
    x = layers.Reshape((1, 1, latent_dim))(z)
    x = layers.Conv2DTranspose(2 * filters, 4, padding="valid", name="project")(x)
    for resolution, width, extra in ((4, 2 * filters, at_4), (8, filters, at_8)):
        for i in range(extra + 1):
            if i:
                x = layers.Conv2D(width, 3, padding="same", name=f"extra{resolution}_{i}")(x)
            if batch_norm:
                x = _batch_norm(f"bn{resolution}_{i}")(x)
            x = _nonlinearity(nonlinearity)(x)
        if resolution == 4:
            x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", name="up8")(x)
    x = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", name="to_image")(x)
    return keras.Model(z, layers.Activation("tanh", dtype="float32", name="images")(x), name=name)


def dcgan_variant_critic(image_size=16, channels=1, depth=4, filters=32, nonlinearity="leaky_relu",
                         normalization=None, name="critic"):
    """The critic / discriminator beside ``dcgan_variant_generator``: 16 -> 8 -> 4 -> score with
    stride-2 4x4 convolutions, plus stride-1 3x3 ones to make ``depth`` layers with kernels;
    ``normalization`` "batch", "layer" (WGAN-GP's replacement for batch norm) or None after every
    hidden layer but the first, as in the DCGAN critic."""
    if image_size != 16:
        raise ConfigError(f"the DCGAN variants are built for 16x16 images, got {image_size}")
    if normalization not in ("batch", "layer", None):
        raise ConfigError(f"unknown critic normalization {normalization!r}")
    at_4, at_8 = _extra_layers(depth, 3)
    images = keras.Input((image_size, image_size, channels), name="images")
    x = layers.Conv2D(filters, 4, strides=2, padding="same", name="down8")(images)
    x = _nonlinearity(nonlinearity)(x)
    for resolution, width, extra in ((8, filters, at_8), (4, 2 * filters, at_4)):
        for i in range(extra + 1):
            if i:
                x = layers.Conv2D(width, 3, padding="same", name=f"extra{resolution}_{i}")(x)
            elif resolution == 4:
                x = layers.Conv2D(width, 4, strides=2, padding="same", name="down4")(x)
            else:
                continue  # the first layer: no normalisation, already activated
            if normalization == "batch":
                x = _batch_norm(f"bn{resolution}_{i}")(x)
            elif normalization == "layer":
                x = layers.LayerNormalization(axis=[1, 2, 3], epsilon=1e-5,
                                              name=f"ln{resolution}_{i}")(x)
            x = _nonlinearity(nonlinearity)(x)
    x = layers.Conv2D(1, 4, padding="valid", name="score")(x)
    return keras.Model(images, layers.Flatten(dtype="float32")(x), name=name)
