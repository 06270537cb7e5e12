"""The one exception type for bad input: the CLI prints its message on one line and exits with status 2."""


class BadInput(Exception):
    """A spec, flag, file or directory the user gave cannot be used."""
