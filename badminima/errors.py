"""The one exception type for bad input: the CLI prints its message on one line and exits with status 2."""


class BadInput(Exception):
    """A spec, flag, file or directory the user gave cannot be used."""


class PhaseFailed(Exception):
    """Phases that failed every attempt, after the rest of the sweep finished: the CLI prints its
    message on one line and exits with status 1 (what the other phases computed is in the store)."""
