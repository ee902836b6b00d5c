"""Errors that the command line reports as one line instead of a traceback."""


class ConfigError(ValueError):
    """A bad configuration or input: the message is the whole story for the user."""
