"""Generator EMA: an exponential moving average of the generator's weights (Karras et al. 2018,
Progressive GAN; Yazici et al. 2019; BigGAN's and StyleGAN2's ``G_ema``), the generator that is
sampled, evaluated and exported, while the raw generator keeps training.

After every generator iteration ``t`` (counted from 1), every trained weight ``a`` of the average
moves towards the generator's ``w``:

    a <- d_t * a + (1 - d_t) * w,    d_t = min(decay, 0.5 ** (1 / (rampup * t)))

The ramp-up (StyleGAN2-ADA's ``ema_rampup``) caps the average's half-life at ``rampup`` (2 %) of
the iterations made so far, so the average never reaches far back into a generator that is still
improving: at 1,000 iterations its half-life is 20 iterations, and it widens with the run up to the
half-life of ``decay`` (693 iterations for 0.999, reached at 35,000 iterations). A generator that
improves quickly makes any average lag; one that oscillates is what the average smooths.
experiments/ema.py measured ramp-ups of 2, 5 and 10 % against the older warm-up
``(1 + t) / (10 + t)`` (a half-life of ~8 % of the run): 2 % was closest to, or ahead of, the raw
generator at every point (docs/RESULTS.md, "The generator EMA").

How long an average should be depends on how the generator moves. ``--recipe fast`` uses a decay
of 0.973 (a half-life of at most 25 iterations): its raw generator's quality swings by up to 50 %
within a few dozen iterations and by 2x between checkpoints, and late in a long run an average
over ~400 iterations (0.999) mixed different places of that swing and fell behind the raw
generator by up to 2x. A half-life of 25 follows the swing instead: not ahead of the raw generator
at every point (6 of 10 in a short run, 3 of 4 late in a long one, level at the fourth), but ahead
of its mean over the same stretch, where 0.999 was behind it (experiments/ema.py ``--continue``,
``--diagnose``; docs/RESULTS.md, "The generator EMA, diagnosed").

Batch norm: the average's batch-norm statistics are not averaged. The average's weights produce
activations whose statistics are not the average of the raw generator's, so its statistics are
*standing statistics* (BigGAN, Brock et al. 2019): the average run in training mode on fixed
latents, its batch statistics accumulated (``standing_statistics``). They are recomputed whenever
the average is used (sampled, measured, saved: ``WGAN.refresh_sampler``), are a pure function of
the averaged weights, and are stored with it, so an exported model's seed -> image is a pure
function and a resumed run is the same run.

The update runs in cross-replica context, after the replicas' step (``GenerativeModel.after_step``):
every replica (and every worker) holds the same generator, so the same average.
"""
import math

import keras
import tensorflow as tf

from wgan_tf import rng
from wgan_tf.models import batch_norms

RAMPUP = 0.02
# Standing statistics: this many latents, in batches of STANDING_BATCH, from a stream of their own.
STANDING_SAMPLES = 1024
STANDING_BATCH = 256
_STANDING_STREAM = 3  # wgan_tf.rng stream; lane 1 (lane 0 is the sample grids')


def decay_at(decay, iteration, rampup=RAMPUP):
    """The decay of the update after ``iteration`` generator iterations (``iteration`` >= 1)."""
    iteration = tf.cast(iteration, tf.float32)
    ramped = tf.pow(0.5, 1.0 / tf.maximum(rampup * iteration, 1e-8))
    return tf.minimum(tf.constant(decay, tf.float32), ramped)


def half_life(decay):
    """Iterations after which an update's weight in the average has halved."""
    return math.log(0.5) / math.log(decay)


def average_network(network):
    """A copy of ``network`` (same architecture, same weights now), named ``NAME_ema``, whose
    weights are never trained: it holds the average."""
    average = keras.models.clone_model(network)
    average.name = f"{network.name}_ema"
    for a, w in zip(average.weights, network.weights):
        a.assign(w)
    average.trainable = False
    return average


def update(average, network, decay, statistics=False):
    """One EMA step of ``average``'s trained weights towards ``network``'s (an op in a graph);
    ``statistics``: the batch-norm statistics too (the older rule, for experiments/ema.py)."""
    for a, w in zip(average.weights, network.weights):  # float32: weights stay float32 always
        if w.trainable or statistics:
            a.assign(decay * a.value + (1.0 - decay) * w.value)


def standing_statistics(network, seed=0, num_classes=None, samples=STANDING_SAMPLES,
                        batch_size=STANDING_BATCH):
    """Sets the moving mean and variance of ``network``'s batch norms to its *standing statistics*
    (BigGAN): the mean over ``samples // batch_size`` batches of fixed latents (and classes
    0, 1, ... in turn for a conditional generator) of each layer's batch statistics, the network
    run in training mode. A pure function of the weights and ``seed``; eager."""
    norms = batch_norms(network)
    if not norms:
        return
    latent_dim = network.inputs[0].shape[-1]
    latents = rng.normal([samples, latent_dim], seed, _STANDING_STREAM, 0, lane=1)
    labels = tf.range(samples) % num_classes if num_classes else None
    saved = [(norm.momentum, norm.trainable) for norm in norms]
    try:
        for k, start in enumerate(range(0, samples, batch_size)):
            for norm in norms:
                # momentum k / (k + 1): the running mean of the batches' statistics
                norm.momentum, norm.trainable = k / (k + 1), True
            z = latents[start:start + batch_size]
            network(z if labels is None else [z, labels[start:start + batch_size]],
                    training=True)
    finally:
        for norm, (momentum, trainable) in zip(norms, saved):
            norm.momentum, norm.trainable = momentum, trainable
