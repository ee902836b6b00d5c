"""``wgan-tf generate``: ask a running server for images and write them as PNG.

``--out FILE.png`` writes one grid of all images; ``--out DIR/`` writes one PNG per image, named by
its seed, as encoded by the server (``png_bytes``), so the files are exactly what any client of the
model gets.

``--reconstruct IN.png [IN2.png ...]`` asks an auto-encoder's ``reconstruct`` signature instead:
each file is one image (any size, colour or grey), resized on its shorter side and centre-cropped
to the model's size and channels as training data is (``wgan_tf.data.images.fit``; a grid is not
split into its images: crop one out first). ``--out FILE.png`` gets the images in a row and their
reconstructions in the row below.
"""
from pathlib import Path

import numpy as np

from wgan_tf import pictures
from wgan_tf.errors import ConfigError
from wgan_tf.serving.client import Client


def run(args):
    out = Path(args.out)
    per_image = args.out.endswith(("/", "\\")) or out.is_dir()
    if not per_image and out.suffix.lower() != ".png":
        raise ConfigError(f"--out must be a .png file or a directory ending in '/', got {args.out}")
    if args.reconstruct and per_image:
        raise ConfigError("--reconstruct writes one FILE.png (images above their reconstructions)")
    with Client(args.server, model_name=args.model_name, timeout=args.timeout) as client:
        if args.wait > 0:
            client.wait_until_ready(args.wait)
        if args.reconstruct:
            out.parent.mkdir(parents=True, exist_ok=True)
            real = read_images(args.reconstruct, client.image_shape())
            pictures.save_png(pictures.grid(np.concatenate([real, client.reconstruct(real)]),
                                            columns=len(real)), out)
        elif per_image:
            out.mkdir(parents=True, exist_ok=True)
            for i, png in enumerate(client.png_bytes(args.num, seed=args.seed)):
                (out / f"seed_{args.seed + i}.png").write_bytes(png)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            pictures.save_png(pictures.grid(client.generate(args.num, seed=args.seed)), out)
    print(out)


def read_images(paths, shape):
    """Image files as uint8 ``[N, H, W, C]`` for a model taking ``shape`` (H, W, C) images."""
    import tensorflow as tf

    from wgan_tf.data import images

    size, _, channels = shape
    result = []
    for path in paths:
        try:
            encoded = tf.constant(Path(path).read_bytes())
            result.append(images.fit(images.decode(encoded), size, channels).numpy())
        except OSError as e:
            raise ConfigError(f"cannot read {path}: {e.strerror}") from None
        except tf.errors.OpError:
            raise ConfigError(f"{path} is not an image (JPEG, PNG, GIF, WebP or BMP)") from None
    return np.stack(result)
