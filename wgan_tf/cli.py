"""``wgan-tf``: one subcommand per module (``wgan_tf.arguments.COMMANDS``), whose ``run(args)``
runs it.

The CLI speaks for itself: TensorFlow's C++ start-up lines (device probing, oneDNN notices, the
"failed call to cuInit" of every machine without a GPU) are silenced before TensorFlow is imported,
unless ``--verbose`` asks for them; a ``TF_CPP_MIN_LOG_LEVEL`` of the user's own quiets at least as
much as the default (it is how people quiet TensorFlow, never a way to get more lines). ``--help``
answers without importing TensorFlow. Bad input ends in one line on stderr and exit status 2, not
a traceback; a run stopped by a signal exits with 128 + the signal's number after saying where it
stopped; a worker of a multi-worker job whose peer was lost says so in one line and exits with
``WorkerLost.STATUS`` at once.
"""
import argparse
import contextlib
import importlib
import os
import sys
import tempfile

from wgan_tf.arguments import COMMANDS


def quiet_tensorflow(verbose=False):
    """Import TensorFlow without its C++ start-up lines, unless asked for them.

    ``TF_CPP_MIN_LOG_LEVEL`` silences what TensorFlow logs once it runs, but not what its libraries
    print while they load (absl's "All log messages before absl::InitializeLog()" and the lines
    after it, measured with TF 2.21), so the import itself runs with the process's stderr sent to
    a temporary file, shown only if the import fails. A level the user set is raised to the
    default's (3) and the import is quieted all the same: a user who sets it wants fewer lines.
    """
    if verbose or "tensorflow" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = str(max(_log_level(), QUIET_LEVEL))
    with tempfile.TemporaryFile("w+") as log:
        try:
            with _stderr_to(log):
                import tensorflow  # noqa: F401
        except BaseException:
            log.seek(0)
            sys.stderr.write(log.read())
            raise


QUIET_LEVEL = 3  # TensorFlow's C++ logging: errors and fatal messages hidden too


def _log_level():
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


@contextlib.contextmanager
def _stderr_to(file):
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (and a pointer to --help) instead of the usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = _Parser(prog="wgan-tf", description="Wasserstein GANs and auto-encoders: train, "
                     "export, serve, generate, evaluate, explain.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true",
                        help="also show TensorFlow's own log lines")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    for name, (_, help_text, add_arguments) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text,
                                     parents=[common]))
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    quiet_tensorflow(args.verbose)
    from wgan_tf.errors import ConfigError, Stopped, WorkerLost

    try:
        return importlib.import_module(COMMANDS[args.command][0]).run(args) or 0
    except ConfigError as e:
        print(f"wgan-tf {args.command}: error: {e}", file=sys.stderr)
        return 2
    except Stopped as e:
        print(f"wgan-tf {args.command}: {e}", file=sys.stderr)
        return 128 + e.signum
    except WorkerLost as e:
        if args.verbose and e.__cause__ is not None:
            print(f"{type(e.__cause__).__name__}: {e.__cause__}", file=sys.stderr)
        print(f"wgan-tf {args.command}: error: {e}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        # Not a normal exit: after a failed collective, TensorFlow's coordination service spends
        # from 1.5 to 20 s (measured) shutting down, and there is nothing left to save.
        os._exit(WorkerLost.STATUS)
    except KeyboardInterrupt:
        print(f"wgan-tf {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
