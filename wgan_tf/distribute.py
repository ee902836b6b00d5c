"""Choosing the ``tf.distribute`` strategy for ``--devices N``."""
import functools

import tensorflow as tf

from wgan_tf.errors import ConfigError


def make_strategy(devices=1):
    """MirroredStrategy over ``devices`` GPUs, or over as many logical CPU devices where there is
    no GPU; the default strategy for one device.

    Must run before TensorFlow initialises its devices (before the first op) when it has to split
    the CPU.
    """
    if devices < 1:
        raise ConfigError(f"devices must be positive, got {devices}")
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if devices > len(gpus):
            raise ConfigError(f"--devices {devices} asked for, but only {len(gpus)} GPU(s) found")
        names = [f"/gpu:{i}" for i in range(devices)]
    else:
        names = _logical_cpus(devices)
    if devices == 1:
        return tf.distribute.get_strategy() if not gpus else tf.distribute.OneDeviceStrategy(names[0])
    return _mirrored(tuple(names))


@functools.lru_cache(maxsize=None)
def _mirrored(names):
    # One strategy per device set and process: a second MirroredStrategy over the same devices
    # reuses collective instance keys and its all-reduces can meet the first one's ("Shape mismatch
    # in the collective instance").
    return tf.distribute.MirroredStrategy(list(names))


def _logical_cpus(devices):
    physical = tf.config.list_physical_devices("CPU")[0]
    configured = tf.config.get_logical_device_configuration(physical) or [None]
    if len(configured) < devices:
        try:
            tf.config.set_logical_device_configuration(
                physical, [tf.config.LogicalDeviceConfiguration()] * devices)
        except RuntimeError:
            raise ConfigError(f"cannot split the CPU into {devices} devices after TensorFlow has "
                              f"started with {len(configured)}") from None
    return [d.name for d in tf.config.list_logical_devices("CPU")[:devices]]
