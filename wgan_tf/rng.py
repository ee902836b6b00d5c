"""Counter-based random numbers that are the same with and without XLA and on any replica count.

``tf.random.stateless_normal(seed, alg="philox")`` turns its seed into Philox's key and counter with
an op (StatelessRandomGetKeyCounter) whose XLA kernel scrambles differently from the CPU kernel, so
the same seed gives other numbers once XLA is on (measured with TF 2.21). Giving Philox its key and
counter directly gives the same numbers on both paths. The iteration and stream go in the counter's
high word: Philox advances the low word for each block of four numbers, so draws of neighbouring
iterations never overlap.

A ``lane`` starts the low word at ``lane * 2**40`` instead of 0: more independent draws per
(stream, iteration), e.g. the augmentation of the real and of the generated images of one critic
iteration, without changing any draw of lane 0 (the streams the package had before lanes), and
without overlap for any draw under 2**42 numbers.
"""
import tensorflow as tf

_PHILOX = 1
_STREAMS = 4


_LANE = 2**40


def _key_counter(seed, stream, counter, lane=0):
    key = tf.reshape(tf.cast(seed, tf.uint64), [1])
    high = tf.cast(counter, tf.uint64) * _STREAMS + tf.cast(stream, tf.uint64)
    return key, tf.stack([tf.constant(lane * _LANE, tf.uint64), high])


def normal(shape, seed, stream, counter, lane=0):
    """N(0, 1) float32 of ``shape``, a pure function of (seed, stream < 4, counter, lane)."""
    key, ctr = _key_counter(seed, stream, counter, lane)
    return tf.raw_ops.StatelessRandomNormalV2(shape=shape, key=key, counter=ctr, alg=_PHILOX)


def uniform(shape, seed, stream, counter, lane=0):
    """U[0, 1) float32 of ``shape``, a pure function of (seed, stream < 4, counter, lane)."""
    key, ctr = _key_counter(seed, stream, counter, lane)
    return tf.raw_ops.StatelessRandomUniformV2(shape=shape, key=key, counter=ctr, alg=_PHILOX)
