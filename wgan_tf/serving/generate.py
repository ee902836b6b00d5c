"""``wgan-tf generate``: ask a running server for images and write them as PNG.

``--out FILE.png`` writes one grid of all images; ``--out DIR/`` writes one PNG per image, named by
its seed (``seed_7.png``; ``seed_7_tulip.png`` with a class), as encoded by the server
(``png_bytes``), so the files are exactly what any client of the model gets.

A conditional model needs ``--label``: a class index or name for every image, or ``all`` for one
row per class, each row from the same seeds (so a column shows one latent in every class).
``--truncation PSI`` asks ``from_seeds_truncated`` instead of ``from_seeds``.
``--interpolate SEED_A SEED_B --steps N`` writes a strip of N images along the spherical path from
one seed's latent to the other's, ``interpolate`` signature (with ``--label all``, one strip per
class).

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


DEFAULT_STEPS = 8


def run(args):
    out = Path(args.out)
    per_image = args.out.endswith(("/", "\\")) or out.is_dir()
    _check_flags(args, out, per_image)
    with Client(args.server, model_name=args.model_name, timeout=args.timeout) as client:
        if args.wait > 0:
            client.wait_until_ready(args.wait)
        if args.reconstruct:
            out.parent.mkdir(parents=True, exist_ok=True)
            real = read_images(args.reconstruct, client.image_shape())
            pictures.save_png(pictures.grid(np.concatenate([real, client.reconstruct(real)]),
                                            columns=len(real)), out)
            print(out)
            return
        names = client.class_names()
        labels = _labels(args.label, names, client)
        if args.interpolate:
            seed_a, seed_b = args.interpolate
            steps = args.steps or DEFAULT_STEPS
            rows = [client.interpolate(seed_a, seed_b, steps, label=label) for label in labels]
            out.parent.mkdir(parents=True, exist_ok=True)
            pictures.save_png(pictures.grid(np.concatenate(rows), columns=steps), out)
        elif per_image:
            out.mkdir(parents=True, exist_ok=True)
            for label in labels:
                pngs = client.png_bytes(args.num, seed=args.seed, labels=label,
                                        truncation=args.truncation)
                suffix = "" if label is None else f"_{names[label]}"
                for i, png in enumerate(pngs):
                    (out / f"seed_{args.seed + i}{suffix}.png").write_bytes(png)
        else:
            rows = [client.generate(args.num, seed=args.seed, labels=label,
                                    truncation=args.truncation) for label in labels]
            out.parent.mkdir(parents=True, exist_ok=True)
            columns = args.num if args.label == "all" else None
            pictures.save_png(pictures.grid(np.concatenate(rows), columns=columns), out)
    print(out)


def _check_flags(args, out, per_image):
    if not per_image and out.suffix.lower() != ".png":
        raise ConfigError(f"--out must be a .png file or a directory ending in '/', got {args.out}")
    if args.reconstruct:
        latent_flags = {"--label": args.label, "--truncation": args.truncation,
                        "--interpolate": args.interpolate}
        given = next((flag for flag, value in latent_flags.items() if value is not None), None)
        if given:
            raise ConfigError(f"--reconstruct takes no {given}")
        if per_image:
            raise ConfigError("--reconstruct writes one FILE.png (images above their "
                              "reconstructions)")
    if args.steps is not None and not args.interpolate:
        raise ConfigError("--steps is the length of an --interpolate strip")
    if args.interpolate:
        if per_image:
            raise ConfigError("--interpolate writes one FILE.png (a strip of --steps images)")
        if args.truncation is not None:
            raise ConfigError("--truncation draws --num images; --interpolate walks between the "
                              "untruncated latents of its two seeds")
        if args.steps is not None and args.steps < 2:
            raise ConfigError(f"--steps must be at least 2 (both ends), got {args.steps}")
    if args.truncation is not None and not args.truncation >= 0:
        raise ConfigError(f"--truncation must be >= 0, got {args.truncation}")


def _labels(label, names, client):
    """The class indices --label asks for (``[None]`` without a class), checked against the
    model's class ``names`` (None: not a conditional model)."""
    where = f"model {client.model_name!r} at {client.address}"
    if names is None:
        if label is not None:
            raise ConfigError(f"--label: {where} has no classes (it is not a conditional model)")
        return [None]
    if label is None:
        raise ConfigError(f"{where} makes an image of a class: give --label (one of "
                          f"{', '.join(names)}, or all)")
    if label == "all":
        return list(range(len(names)))
    if label in names:
        return [names.index(label)]
    if label.lstrip("-").isdigit() and 0 <= int(label) < len(names):
        return [int(label)]
    raise ConfigError(f"--label: unknown class {label!r}; {where} has classes "
                      f"{', '.join(names)} (by name, or index 0 to {len(names) - 1}; or all)")


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
