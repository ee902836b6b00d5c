"""Counter-based random numbers that are the same with and without XLA and on any replica count.

``tf.random.stateless_normal(seed, alg="philox")`` turns its seed into Philox's key and counter with
an op (StatelessRandomGetKeyCounter) whose XLA kernel scrambles differently from the CPU kernel, so
the same seed gives other numbers once XLA is on (measured with TF 2.21). Giving Philox its key and
counter directly gives the same numbers on both paths. The iteration and stream go in the counter's
high word: Philox advances the low word for each block of four numbers, so draws of neighbouring
iterations never overlap.
"""
import tensorflow as tf

_PHILOX = 1
_STREAMS = 4


def _key_counter(seed, stream, counter):
    key = tf.reshape(tf.cast(seed, tf.uint64), [1])
    high = tf.cast(counter, tf.uint64) * _STREAMS + tf.cast(stream, tf.uint64)
    return key, tf.stack([tf.constant(0, tf.uint64), high])


def normal(shape, seed, stream, counter):
    """N(0, 1) float32 of ``shape``, a pure function of (seed, stream < 4, counter)."""
    key, ctr = _key_counter(seed, stream, counter)
    return tf.raw_ops.StatelessRandomNormalV2(shape=shape, key=key, counter=ctr, alg=_PHILOX)


def uniform(shape, seed, stream, counter):
    """U[0, 1) float32 of ``shape``, a pure function of (seed, stream < 4, counter)."""
    key, ctr = _key_counter(seed, stream, counter)
    return tf.raw_ops.StatelessRandomUniformV2(shape=shape, key=key, counter=ctr, alg=_PHILOX)
