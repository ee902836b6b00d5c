"""Generator EMA: an exponential moving average of the generator's weights (Karras et al. 2018,
Progressive GAN; Yazici et al. 2019; BigGAN's and StyleGAN2's ``G_ema``), the generator that is
sampled, evaluated and exported, while the raw generator keeps training.

After every generator iteration ``t`` (counted from 1), every weight ``a`` of the average moves
towards the generator's ``w``:

    a <- d_t * a + (1 - d_t) * w,    d_t = min(decay, (1 + t) / (10 + t))

The warm-up ``(1 + t) / (10 + t)`` is the rule of ``tf.train.ExponentialMovingAverage`` with
``num_updates``: d_1 = 0.18, d_90 = 0.91, d_990 = 0.991, so the average spans about the last tenth of
the run until that reaches ``1 / (1 - decay)`` iterations (10k iterations for 0.999). Without it, a
run of a few thousand iterations at decay 0.999 would still carry e^-3 = 5 % of the random initial
weights after 3,000 iterations, and a short run would sample a blur of its first steps.

Batch norm: the average covers *every* weight of the generator, the moving mean and variance of its
batch-norm layers included, as BigGAN's ``ema`` and timm's ``ModelEmaV2`` average the whole state.
In inference mode the average then normalises with averaged statistics of the raw generator's
activations. (An average generator's own activations have slightly different statistics; BigGAN's
"standing statistics" recompute them from many batches. Not done here: at the decays used the
difference is small, and an exported model must not depend on extra sampling.)

The update runs in cross-replica context, after the replicas' step (``GenerativeModel.after_step``):
every replica (and every worker) holds the same generator, so the same average.
"""
import keras
import tensorflow as tf

WARMUP_OFFSET = 10.0


def decay_at(decay, iteration):
    """The decay of the update after ``iteration`` generator iterations (``iteration`` >= 1)."""
    iteration = tf.cast(iteration, tf.float32)
    return tf.minimum(tf.constant(decay, tf.float32), (1.0 + iteration) / (WARMUP_OFFSET + iteration))


def average_network(network):
    """A copy of ``network`` (same architecture, same weights now), named ``NAME_ema``, whose
    weights are never trained: it holds the average."""
    average = keras.models.clone_model(network)
    average.name = f"{network.name}_ema"
    for a, w in zip(average.weights, network.weights):
        a.assign(w)
    average.trainable = False
    return average


def update(average, network, decay, iteration):
    """One EMA step of every weight of ``average`` towards ``network``'s (an op in a graph)."""
    d = decay_at(decay, iteration)
    for a, w in zip(average.weights, network.weights):  # float32: weights stay float32 always
        a.assign(d * a.value + (1.0 - d) * w.value)
