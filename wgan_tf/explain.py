"""``wgan-tf explain``: where the critic looks, on real and generated images, with tf-keras-vis.

One figure, rows real / generated, columns: the images, the saliency of the critic's score
(|d score / d pixel|, Simonyan et al. 2014) and, where the critic is convolutional, Grad-CAM++
(Chattopadhay et al. 2018) on its last feature map with more than one position. Each panel is a
grid of the same ``--num`` images; every map is scaled to [0, 1] per image, so the maps show where
the critic looks, not how strongly.
"""
import math
import os

import keras
import numpy as np
import tensorflow as tf

from wgan_tf import data, pictures
from wgan_tf.config import AUTOENCODERS, sampler_network
from wgan_tf.errors import ConfigError
from wgan_tf.evaluate import generated_samples, num_classes, real_samples
from wgan_tf.models import critic_conditioning
from wgan_tf.rundir import load_saved, read_run_config


def run(args):
    print(explain(args.run_dir, args.out, args.dataset, args.num, args.seed, args.data_dir,
                  args.generator))


def critic_score(outputs):
    """tf-keras-vis score: the critic's one score per image, minus itself held constant.

    Its gradients are the score's, but its value is 0: Grad-CAM++ weights each image by
    exp(score), which overflows for the unbounded scores of a WGAN-GP critic, and cancels out
    anyway once each map is scaled to [0, 1].
    """
    score = outputs[:, 0]
    return score - tf.stop_gradient(score)


def saliency_maps(critic, images):
    """|d score / d pixel|, the maximum over channels, scaled to [0, 1] per image: ``[N, H, W]``."""
    from tf_keras_vis.saliency import Saliency

    # tf-keras-vis feeds a list of inputs; a model built on a list takes it without a warning.
    as_list = keras.Model(critic.inputs, critic.outputs)
    return Saliency(as_list, clone=False)(critic_score, images)


def gradcam_layer(critic):
    """The critic's last layer whose output is a feature map with more than one position (the
    DCGAN critic's score is a 4x4 convolution down to 1x1), or None for an MLP critic."""
    for layer in reversed(critic.layers):
        shape = layer.output.shape
        if (len(shape) == 4 and shape[1] * shape[2] > 1
                and not isinstance(layer, keras.layers.InputLayer)):
            return layer
    return None


def gradcam_plus_plus_maps(critic, images, layer):
    """Grad-CAM++ of the score on ``layer``'s feature map, resized to the images: ``[N, H, W]``."""
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

    return GradcamPlusPlus(critic, clone=False)(
        critic_score, images, penultimate_layer=layer, seek_penultimate_conv_layer=False)


class _ClassScores(keras.layers.Layer):
    """A projection critic's score of each image of a batch as its own class: psi(phi(x_i)) +
    <embed(y_i), phi(x_i)>, the rows embed(y_i) held fixed."""

    def __init__(self, rows, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.rows = tf.constant(rows, tf.float32)

    def call(self, inputs):
        phi, score = inputs
        return (tf.reshape(score, [-1, 1])
                + tf.reduce_sum(phi * self.rows, axis=1, keepdims=True))


def scores_of_classes(critic, labels):
    """A projection critic (``[images, labels] -> score``) as ``images -> score`` for one batch
    of images of the classes ``labels``: what tf-keras-vis explains, one input that it
    differentiates, the critic's own layers (Grad-CAM++ finds its feature maps)."""
    rows = critic.get_layer("class_embedding").embeddings.numpy()[np.asarray(labels)]
    score = _ClassScores(rows, name="class_score")(
        [critic.get_layer("features").output, critic.get_layer("score").output])
    return keras.Model(critic.inputs[0], score, name=critic.name)


def explain(run_dir, out, dataset=None, num=8, seed=0, data_dir=None, generator=None):
    """Writes the figure for ``run_dir`` to ``out`` and returns ``out``."""
    config = read_run_config(run_dir)
    spec = dataset or config["dataset"]
    if data.point_dim(spec) is not None:
        raise ConfigError(f"explain shows critics of images; {spec} is 2-D points")
    if num < 1:
        raise ConfigError(f"--num must be positive, got {num}")
    if config.get("model") in AUTOENCODERS:
        raise ConfigError(f"explain shows a GAN's critic; {run_dir} is a --model "
                          f"{config['model']} run, which has none")
    saved = load_saved(run_dir, "critic")
    conditioning = critic_conditioning(saved)
    critic = saved
    if conditioning == "acgan":  # the score, not the class logits
        critic = keras.Model(saved.inputs, saved.outputs[0], name=saved.name)
    classes = num_classes(config)
    real = real_samples(spec, config, num, seed, data_dir=data_dir,
                        labels=conditioning == "projection")
    rows = {"real": real if conditioning == "projection" else (real, None),
            "generated": (generated_samples(load_saved(run_dir, sampler_network(config, generator)),
                                            num, seed, num_classes=classes),
                          np.arange(num) % classes if classes else None)}
    panels = {}
    for name, (images, labels) in rows.items():
        if conditioning == "projection":  # each image scored as its own class
            critic = scores_of_classes(saved, labels)
        layer = gradcam_layer(critic)
        scores = critic.predict(images, verbose=0)[:, 0]
        panels[name] = (scores, images, saliency_maps(critic, images),
                        gradcam_plus_plus_maps(critic, images, layer) if layer else None)
    _draw(panels, layer.name if layer else None, out)
    return out


def _draw(panels, layer_name, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 3 if layer_name else 2
    fig, axes = plt.subplots(2, columns, figsize=(3.2 * columns, 6.8), squeeze=False)
    for row, (name, (scores, images, saliency, cam)) in zip(axes, panels.items()):
        per_row = math.ceil(math.sqrt(len(images)))
        image_grid = pictures.grid(pictures.to_uint8(images), per_row)
        grey = image_grid.mean(axis=-1)

        def map_grid(maps):
            return pictures.grid(np.round(255 * maps[..., None]).astype(np.uint8), per_row)[..., 0]

        row[0].imshow(image_grid[..., 0] if image_grid.shape[-1] == 1 else image_grid,
                      cmap="gray", vmin=0, vmax=255)
        row[0].set_title(f"{name}: critic score {scores.mean():.3g} +- {scores.std():.2g}",
                         fontsize=9)
        row[1].imshow(map_grid(saliency), cmap="magma", vmin=0, vmax=255)
        row[1].set_title("saliency", fontsize=9)
        if cam is not None:
            row[2].imshow(grey, cmap="gray", vmin=0, vmax=255)
            row[2].imshow(map_grid(cam), cmap="jet", vmin=0, vmax=255, alpha=0.5)
            row[2].set_title(f"Grad-CAM++ ({layer_name})", fontsize=9)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
