"""``wgan-tf generate``: ask a running server for images and write them as PNG.

``--out FILE.png`` writes one grid of all images; ``--out DIR/`` writes one PNG per image, named by
its seed, as encoded by the server (``png_bytes``), so the files are exactly what any client of the
model gets.
"""
from pathlib import Path

from wgan_tf import pictures
from wgan_tf.errors import ConfigError
from wgan_tf.serving.client import Client


def run(args):
    out = Path(args.out)
    per_image = args.out.endswith(("/", "\\")) or out.is_dir()
    if not per_image and out.suffix.lower() != ".png":
        raise ConfigError(f"--out must be a .png file or a directory ending in '/', got {args.out}")
    with Client(args.server, model_name=args.model_name, timeout=args.timeout) as client:
        if args.wait > 0:
            client.wait_until_ready(args.wait)
        if per_image:
            out.mkdir(parents=True, exist_ok=True)
            for i, png in enumerate(client.png_bytes(args.num, seed=args.seed)):
                (out / f"seed_{args.seed + i}.png").write_bytes(png)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            pictures.save_png(pictures.grid(client.generate(args.num, seed=args.seed)), out)
    print(out)
