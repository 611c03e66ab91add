"""What the package does with what it did not write itself: one rule per kind of danger.

Every command reads files a user, a killed run or another program may have written, and
writes files that other programs (S3PRL, Kaldi, spreadsheets, browsers) interpret. The
rules live here, once each, and every reader and writer calls them:

- values handed to S3PRL's ``-o`` are Python literals that evaluate to exactly that value
  (S3PRL ``eval``s each one), or are refused (``s3prl_override``);
- a path named by a file is used only if it resolves inside the folder it belongs to
  (``resolve_inside``);
- an output folder is new, empty, or a previous output of the same command, and never an
  input or a folder that holds one (``claim_output_dir``, ``staged_output``);
- a JSON file read from a results folder is a regular file of bounded size (``read_json``),
  and a figure in it is a finite number in its range (``finite_number``), or the file is
  named and refused;
- a lock or marker file is created only if nothing, not even a symbolic link, is at its
  path (``create_exclusive``);
- an output file is new or a regular file, never a folder, an input or below a file
  (``claim_output_file``);
- text that another program interprets is checked or neutralised for it
  (``spreadsheet_safe``, ``markdown_safe``, ``kaldi_safe``, ``terminal_safe``).
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from ..errors import InvalidInputError
from .atomic import staged_dir
from .paths import Pathlike

OUTPUT_MARKER = ".s3prl-emo-output.json"
"""Written into every output folder: which command wrote it, so that only that command replaces it."""


# -- values handed to S3PRL --------------------------------------------------------------------


def s3prl_override(values: Mapping[str, object], *, flag: str = "-o") -> str:
    """An S3PRL ``-o`` string that sets each key to exactly its value, as data.

    S3PRL splits ``-o`` at ``,,`` and ``=`` and ``eval``s each value, so a value spliced in
    as text can run code (a folder named ``x,,args.y=__import__('os')...``). Each value is
    written as its Python literal (``repr``), which evaluates to the value and nothing else;
    a value whose literal S3PRL would split, or that is not a plain literal, is refused.

    Args:
        values: ``{"config.downstream_expert.datarc.root": "/data/", "args.seed": 1}``.
        flag: the option the values came from, named in the error.

    Returns:
        ``key=literal,,key=literal``; empty for no values.

    Raises:
        InvalidInputError: a key is not a dotted name, or a value cannot be passed as data.

    Examples:
        >>> s3prl_override({"config.runner.total_steps": 10, "args.upstream_ckpt": "/m/a b.pt"})
        "config.runner.total_steps=10,,args.upstream_ckpt='/m/a b.pt'"
    """
    parts = []
    for key, value in values.items():
        if not all(part.isidentifier() for part in key.split(".")) or not key.startswith(("args.", "config.")):
            raise InvalidInputError(f"{flag}: {key!r} is not an S3PRL override key (args.NAME or config.A.B)")
        literal = repr(value)
        try:
            same = ast.literal_eval(literal) == value
        except (ValueError, SyntaxError):
            same = False
        if not same or ",," in literal or "=" in literal:
            raise InvalidInputError(
                f"{flag}: the value {value!r} for {key} cannot be handed to S3PRL as data "
                "(S3PRL splits -o at ',,' and '=' and evaluates each value); rename it without those characters"
            )
        parts.append(f"{key}={literal}")
    return ",,".join(parts)


def override_keys(text: str | None) -> list[str]:
    """The keys a user's ``-o "args.x=..,,config.y=.."`` sets, in order (none for None or ``none``).

    Examples:
        >>> override_keys("config.optimizer.lr=1e-3,, args.seed=2")
        ['config.optimizer.lr', 'args.seed']
    """
    if not text or text.lower() == "none":
        return []
    return [part.split("=", 1)[0].strip() for part in text.split(",,") if "=" in part]


def refuse_override_keys(text: str, reserved: Iterable[str], *, flag: str = "-o") -> None:
    """Refuse a user's ``-o`` that sets a key the command sets itself (e.g. ``args.expdir``).

    Raises:
        InvalidInputError: naming the flag and the key.

    Examples:
        >>> refuse_override_keys("args.seed=1", ["args.expdir"])
    """
    reserved = set(reserved)
    for key in override_keys(text):
        if key in reserved:
            raise InvalidInputError(f"{flag}: {key} is set by this command and cannot be overridden")


# -- paths -------------------------------------------------------------------------------------


def resolve_inside(root: Pathlike, path: Pathlike, *, what: str) -> Path:
    """``root / path`` resolved (symbolic links followed), if it stays inside ``root``.

    A relative path read from a file (a plan entry, a store alias, a shard index) could name
    ``../..`` or lead through a link to anywhere; only a path inside ``root`` is used.

    Args:
        root: the folder the path belongs to.
        path: relative to ``root``, or absolute.
        what: the file or field that named the path, for the error.

    Raises:
        InvalidInputError: the resolved path is outside ``root``.

    Examples:
        >>> resolve_inside("/tmp", "a/b", what="plan") == Path("/tmp").resolve() / "a" / "b"
        True
    """
    base = Path(root).resolve()
    target = (base / path).resolve()
    if target != base and base not in target.parents:
        raise InvalidInputError(f"{what}: {str(path)!r} leads outside {base}; refused")
    return target


def claim_output_dir(
    out: Pathlike,
    *,
    command: str,
    inputs: Iterable[Pathlike] = (),
    own_files: Iterable[str] = (),
    flag: str = "--out",
) -> Path:
    """Check, before any work, that ``out`` may become ``command``'s output folder.

    It may if it does not exist, is an empty folder, or holds a previous output of the same
    command (its ``OUTPUT_MARKER``). It may not be a file, another folder with content, one
    of ``inputs``, or a folder that holds one of them: replacing it would remove the input.

    Args:
        out: the output folder the user named.
        command: the command's name, e.g. ``"report"``.
        inputs: the paths the command reads.
        own_files: names of files that also mark an earlier output of ``command`` when the
            folder has no ``OUTPUT_MARKER`` (a sweep's ``sweep.json``); links do not count.
        flag: the option that named ``out``, for the error.

    Returns:
        ``out`` as a ``Path``.

    Raises:
        InvalidInputError: naming ``out`` and why it cannot be used.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> claim_output_dir(folder / "report", command="report", inputs=[folder / "results"]).name
        'report'
    """
    out = Path(out)
    resolved = out.resolve()
    if os.path.lexists(out) and not out.is_dir():
        raise InvalidInputError(f"{flag} {out}: is a file, not a folder")
    _require_folder_above(out, flag)
    for source in inputs:
        source = Path(source).resolve()
        if resolved == source or resolved in source.parents:
            raise InvalidInputError(
                f"{flag} {out}: would replace the input {source}; choose a folder that does not hold the input"
            )
    if out.is_dir() and any(out.iterdir()):
        own = any((out / name).is_file() and not (out / name).is_symlink() for name in own_files)
        if _marker_command(out) != command and not own:
            raise InvalidInputError(
                f"{flag} {out}: the folder holds files that are not an earlier output of `s3prl-emo {command}` "
                f"(no {OUTPUT_MARKER}); choose a new or empty folder, or remove it by hand if an older version of "
                "s3prl-emo wrote it"
            )
    return out


def claim_output_file(out: Pathlike, *, inputs: Iterable[Pathlike] = (), flag: str = "--out") -> Path:
    """Check, before any work, that a single output file can be written at ``out``.

    ``out`` may be new or an existing regular file (replaced atomically when written); it
    may not be a folder, anything that is not a regular file (a FIFO, a device), one of
    ``inputs``, or below a file. Found only when writing, after all the work, each of these
    would lose that work.

    Raises:
        InvalidInputError: naming ``flag``, ``out`` and why.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> claim_output_file(folder / "labels.csv", inputs=[folder / "a.wav"]).name
        'labels.csv'
    """
    out = Path(out)
    if out.is_dir():
        raise InvalidInputError(f"{flag} {out}: is a folder; name a file to write")
    if os.path.lexists(out) and out.exists() and not out.is_file():
        raise InvalidInputError(f"{flag} {out}: is not a regular file (a FIFO, socket or device); name a file to write")
    _require_folder_above(out, flag)
    resolved = out.resolve()
    for source in inputs:
        if Path(source).resolve() == resolved:
            raise InvalidInputError(f"{flag} {out}: is an input of this command; writing it would replace the input")
    return out


def _require_folder_above(out: Path, flag: str) -> None:
    """The nearest existing folder above ``out`` is a folder (``mkdir -p`` would fail on a file)."""
    for parent in Path(os.path.abspath(out)).parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise InvalidInputError(f"{flag} {out}: {parent} is a file, not a folder")
            return


def _marker_command(folder: Path) -> str | None:
    marker = folder / OUTPUT_MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("command") if isinstance(data, dict) else None


@contextlib.contextmanager
def staged_output(
    out: Pathlike,
    *,
    command: str,
    inputs: Iterable[Pathlike] = (),
    own_files: Iterable[str] = (),
    flag: str = "--out",
) -> Iterator[Path]:
    """Build ``command``'s output folder in a staging folder, then move it into place.

    Checks ``out`` with ``claim_output_dir``, writes the marker that lets the same command
    replace the folder next time, and leaves nothing at ``out`` if the block fails.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp()) / "out"
        >>> with staged_output(folder, command="report") as stage:
        ...     _ = (stage / "a.txt").write_text("a")
        >>> sorted(p.name for p in folder.iterdir())
        ['.s3prl-emo-output.json', 'a.txt']
    """
    out = claim_output_dir(out, command=command, inputs=inputs, own_files=own_files, flag=flag)
    with staged_dir(out, overwrite=True) as stage:
        (stage / OUTPUT_MARKER).write_text(json.dumps({"command": command}) + "\n", encoding="utf-8")
        yield stage


def create_exclusive(path: Pathlike, mode: int = 0o644) -> int:
    """Create ``path`` for writing, failing if anything (even a dangling link) is there.

    ``O_EXCL`` with ``O_NOFOLLOW``: a lock replaced by a symbolic link is never followed, so
    the file it points to is never truncated.

    Returns:
        an open file descriptor.

    Raises:
        FileExistsError: something is at ``path``.
    """
    return os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, mode)


def create_exclusive_opener(path: str, flags: int) -> int:
    """``open(path, "wb", opener=create_exclusive_opener)``: ``create_exclusive`` for ``open``.

    The file object keeps ``path`` as its name; the permissions are the umask's, as ``open``
    gives them (``flags`` is ignored: the file is always created new, for writing).

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "a.partial"
        >>> with open(path, "w", opener=create_exclusive_opener) as handle:
        ...     _ = handle.write("a")
        >>> handle.name == str(path)
        True
    """
    return create_exclusive(path, 0o666)


def open_new(path: Pathlike, mode: str = "wb"):
    """``open(path, mode)`` for a file that must be new: a leftover there (a killed run's
    temporary, or a link planted at its name) is removed first, never written through.

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "a.partial"
        >>> _ = path.write_text("left over")
        >>> with open_new(path, "w") as handle:
        ...     _ = handle.write("new")
        >>> path.read_text()
        'new'
    """
    try:
        return open(path, mode, opener=create_exclusive_opener)
    except FileExistsError:
        os.unlink(path)
        return open(path, mode, opener=create_exclusive_opener)


# -- figures read back -------------------------------------------------------------------------


def finite_number(value: object, *, where: str, low: float = -math.inf, high: float = math.inf) -> float:
    """``value`` as a float if it is a finite number (not a bool, not a string) in [low, high].

    Args:
        value: what a JSON file held.
        where: the file and key, for the error.
        low: the smallest allowed value.
        high: the largest allowed value.

    Raises:
        InvalidInputError: naming ``where`` and the value.

    Examples:
        >>> finite_number(0.5, where="result.json: test.macro_f1", low=0, high=1)
        0.5
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"{where}: {value!r} is not a number")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise InvalidInputError(f"{where}: {value!r} is not a finite number in [{low}, {high}]")
    return number


MAX_JSON_BYTES = 16 * 2**20
"""The largest JSON file ``read_json`` reads: results, reports and plans are kilobytes."""


def read_json(path: Pathlike, *, max_bytes: int = MAX_JSON_BYTES) -> object:
    """The parsed content of ``path``, a regular file of at most ``max_bytes`` holding JSON.

    A file named by a results folder may be a folder, a FIFO that never ends, gigabytes, not
    UTF-8, or JSON nested deeply enough to exhaust the parser's stack; each is named here,
    not a crash or a hang. What the JSON holds is the caller's to check (``finite_number``).

    Raises:
        InvalidInputError: naming ``path`` and what is wrong with it.

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "result.json"
        >>> _ = path.write_text('{"macro_f1": 0.5}')
        >>> read_json(path)
        {'macro_f1': 0.5}
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size > max_bytes:
        raise InvalidInputError(f"{path}: {size} bytes, more than the {max_bytes} a JSON file here may hold")
    try:
        return json.loads(path.read_bytes()[: max_bytes + 1].decode("utf-8"))
    except UnicodeDecodeError as err:
        raise InvalidInputError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    except RecursionError as err:
        raise InvalidInputError(f"{path}: JSON nested too deeply to read") from err
    except ValueError as err:
        raise InvalidInputError(f"{path}: not valid JSON ({err})") from err
    except OSError as err:
        raise InvalidInputError(f"{path}: unreadable ({err.strerror})") from err


# -- text other programs interpret -------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """``text`` with a leading ``'`` if a spreadsheet would read it as a formula.

    OWASP's rule for CSV injection: a cell starting with ``= + - @``, tab or carriage return
    is prefixed with a single quote, which spreadsheets show as text and do not display.

    Examples:
        >>> spreadsheet_safe("=HYPERLINK(1)"), spreadsheet_safe("Ses01F_001.wav")
        ("'=HYPERLINK(1)", 'Ses01F_001.wav')
    """
    return f"'{text}" if text.startswith(_FORMULA_START) else text


_MARKDOWN_SPECIAL = str.maketrans(
    {c: f"\\{c}" for c in "\\`[]|"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;", "\n": " ", "\r": " "}
)


def markdown_safe(text: str) -> str:
    """``text`` shown as itself in a Markdown table cell, whatever the renderer.

    A name read from a user's folder could close the cell (``|``), end the row (a line
    break), become a link (``[x](javascript:...)``), code or raw HTML (``<script>``,
    which many renderers pass through): those characters are escaped.

    Examples:
        >>> print(markdown_safe("<b>a|b</b> [x](y)"))
        &lt;b&gt;a\\|b&lt;/b&gt; \\[x\\](y)
    """
    return text.translate(_MARKDOWN_SPECIAL)


def terminal_safe(text: str) -> str:
    """``text`` with every non-printable character (newline, tab, escape, ...) shown as its escape.

    A file name is printed in tables and log lines; a newline in it would forge a line, an
    escape sequence would drive the terminal. Printable text, accents included, is unchanged.

    Examples:
        >>> terminal_safe("a\\nb\\x1b[2J.wav"), terminal_safe("café.wav")
        ('a\\\\nb\\\\x1b[2J.wav', 'café.wav')
    """
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def kaldi_safe(token: str, *, what: str) -> str:
    """``token`` if Kaldi reads it as a plain name or path, else an error naming it.

    Kaldi splits its table files at whitespace, runs an rxfilename ending in ``|`` (or
    starting with it) as a shell command, reads ``-`` as standard input and ``path:N`` as an
    offset into a file. None of these can be escaped, so such a name is refused.

    Raises:
        InvalidInputError: naming ``what`` and the token.

    Examples:
        >>> kaldi_safe("/data/a.wav", what="wav.scp")
        '/data/a.wav'
    """
    bad = (
        not token
        or any(ch.isspace() for ch in token)
        or token.endswith("|")
        or token.startswith("|")
        or token == "-"
        or (":" in token and token.rsplit(":", 1)[-1].isdigit())
    )
    if bad:
        raise InvalidInputError(
            f"{what}: {token!r} cannot be written to a Kaldi table (whitespace, a leading or trailing '|', "
            "'-' or a ':offset' would be read as a command or an offset); rename the file"
        )
    return token
