"""``wgan-tf generate``: ask a running server for images and write them as PNG.

``--out FILE.png`` writes one grid of all images; ``--out DIR/`` writes one PNG per image, named by
its seed, as encoded by the server (``png_bytes``), so the files are exactly what any client of the
model gets.
"""
from pathlib import Path

from wgan_tf import pictures
from wgan_tf.errors import ConfigError
from wgan_tf.serving.client import Client


def add_arguments(parser):
    parser.add_argument("--server", default="localhost:8500",
                        help="HOST:PORT (default: %(default)s)")
    parser.add_argument("--num", type=int, default=64,
                        help="number of images (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the first image; image i has seed SEED+i "
                             "(default: %(default)s)")
    parser.add_argument("--out", required=True,
                        help="FILE.png for a grid, or DIR/ (trailing slash) for one PNG per image")
    parser.add_argument("--model-name", default="wgan", help="model to ask (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds per request (default: %(default)s)")
    parser.add_argument("--wait", type=float, default=0.0,
                        help="wait up to this many seconds for a server that is still starting "
                             "(default: %(default)s)")


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
