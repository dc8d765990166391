"""Exception types that the command line turns into one clear message and exit code 2."""


class HarmtraceError(Exception):
    """Base class: a user-facing error whose message says what went wrong and where."""
