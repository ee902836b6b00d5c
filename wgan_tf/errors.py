"""Errors that the command line reports as one line instead of a traceback."""


class ConfigError(ValueError):
    """A bad configuration or input: the message is the whole story for the user."""


class Stopped(Exception):
    """A command stopped on request (SIGTERM, Ctrl-C) after saving its work; the message says
    where it stopped and how to go on. ``signum`` is the signal's number (exit status 128 + it)."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = signum


class WorkerLost(Exception):
    """Another worker of a multi-worker job died, hung or went out of step, so this one cannot go
    on: the job must be restarted, and resumes from its last checkpoint. The command exits with
    ``STATUS``, in the range that a TFJob's ``restartPolicy: ExitCode`` retries (128-255)."""

    STATUS = 129

    def __str__(self):
        return (f"{super().__str__()}; stopping this worker (exit {self.STATUS}); restart the "
                "job to resume from the last checkpoint")
