"""The issue's end-to-end check: WGAN-GP on 8 Gaussians brings the exact W1 between generated and
real points well below where it started."""
from helpers import tiny_config
from wgan_tf import data, metrics, rng
from wgan_tf.distribute import make_strategy
from wgan_tf.train import build_model, train


def w1_of(generator, real):
    return metrics.w1_exact(real, generator(rng.normal([len(real), 2], 7, 3, 0)).numpy())


def test_wgan_gp_learns_8_gaussians(tmp_path):
    # The WGAN-GP toy code's settings: batch 256, 2-D noise, penalty weight 0.1.
    config = tiny_config(dataset="toy:8gaussians", arch="mlp", penalty="gp", gp_weight=0.1,
                         latent_dim=2, batch_size=256, n_critic=5, steps=250, log_every=50,
                         sample_every=250, checkpoint_every=250)
    real = next(iter(data.load("toy:8gaussians", batch_size=500, seed=5))).numpy()
    start = w1_of(build_model(config, make_strategy(1)).generator, real)  # same seed, same init
    trained = train(config, str(tmp_path / "toy"), progress=False)
    end = w1_of(trained.generator, real)
    assert end < 0.7 * start, (start, end)
