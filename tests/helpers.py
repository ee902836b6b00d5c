"""Small configurations that train in seconds on a CPU."""
from wgan_tf.config import TrainConfig


def tiny_config(**overrides):
    values = dict(dataset="digits", image_size=16, channels=1, latent_dim=8, filters=8,
                  batch_size=8, n_critic=2, critic_boost=False, steps=3, log_every=2,
                  sample_every=2, checkpoint_every=2, jit_compile="off", seed=1)
    values.update(overrides)
    return TrainConfig(**values)
