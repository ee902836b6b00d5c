"""Errors that the command line reports as one line instead of a traceback."""


class ConfigError(ValueError):
    """A bad configuration or input: the message is the whole story for the user."""


class Stopped(Exception):
    """A command stopped on request (SIGTERM, Ctrl-C) after saving its work; the message says
    where it stopped and how to go on. ``signum`` is the signal's number (exit status 128 + it)."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = signum
