"""``wgan-tf``: one subcommand per module; each module gives ``add_arguments(parser)`` and
``run(args)``. Bad input ends in one line on stderr and exit status 2, not a traceback."""
import argparse
import importlib
import os
import sys

# name -> (module, one-line help). Modules are imported when their command runs, or for --help.
COMMANDS = {
    "train": ("wgan_tf.train", "train a WGAN; re-running with the same --out resumes"),
    "export": ("wgan_tf.export", "export a run's generator as a TF Serving SavedModel version"),
    "serve": ("wgan_tf.serving.server", "serve exported generators over TF Serving's gRPC API"),
    "generate": ("wgan_tf.serving.generate", "ask a running server for images, write PNGs"),
    "evaluate": ("wgan_tf.evaluate", "measure a run's samples against its dataset, write JSON"),
    "explain": ("wgan_tf.explain", "saliency and Grad-CAM++ maps of a run's critic, write a PNG"),
}


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser(only=None):
    parser = argparse.ArgumentParser(prog="wgan-tf", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv=None):
    from wgan_tf.errors import ConfigError

    _quiet_tensorflow()
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if a in COMMANDS), None)
    args = build_parser(only=command).parse_args(argv)
    try:
        return importlib.import_module(COMMANDS[args.command][0]).run(args) or 0
    except ConfigError as e:
        print(f"wgan-tf {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"wgan-tf {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
