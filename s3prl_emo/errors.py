"""The two error types a user can cause; the CLI prints them as one line (exit code 2)."""


class InvalidInputError(ValueError):
    """A value, row or flag is wrong: the message names the file, row or option."""


class CorpusLayoutError(FileNotFoundError):
    """A file or folder the layout promises is missing or unreadable."""
