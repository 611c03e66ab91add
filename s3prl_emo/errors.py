"""The two error types a user can cause; the CLI prints them as one line (exit code 2)."""


class InvalidInputError(ValueError):
    """A value, row or flag is wrong: the message names the file, row or option.

    Examples:
        >>> from s3prl_emo import soft_labels
        >>> try:
        ...     soft_labels([["Happy"]], ["Happy", "Sad"], smoothing=0.9)
        ... except InvalidInputError as err:
        ...     print("refused")
        refused
    """


class CorpusLayoutError(FileNotFoundError):
    """A file or folder the layout promises is missing or unreadable.

    Examples:
        >>> from s3prl_emo import check_splits
        >>> try:
        ...     check_splits("no-such-folder")
        ... except CorpusLayoutError:
        ...     print("refused")
        refused
    """
