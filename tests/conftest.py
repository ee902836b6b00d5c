"""Test setup: TensorFlow quiet, and the CPU split into two logical devices before TensorFlow
starts, so MirroredStrategy can run two replicas on a machine without GPUs."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

# Run directories' .keras files hold the package's own layers (wgan_tf.models.BatchNormalization,
# ConditionalBatchNormalization), which keras.saving.load_model finds once they are registered.
import wgan_tf.models  # noqa: E402,F401
