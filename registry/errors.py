"""The base of every expected failure: the CLIs print its message and exit 1, without a traceback."""


class ExpectedError(Exception):
    """A failure a person can act on (bad configuration, unreachable server); the message says what to do."""
