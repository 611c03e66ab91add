"""The podcast-release reader shared by MSP-PODCAST and BIIC-PODCAST (the same lab protocol).

Expected layout, MSP-PODCAST's own (BIIC-PODCAST is assumed to follow it)::

    <corpus_dir>/Audios/<FileName>.wav
    <corpus_dir>/Labels/labels_detailed.csv    # one row per worker and speaking turn
    <corpus_dir>/Labels/labels_consensus.csv   # Split_Set, SpkrID, Gender per turn (preferred)
    <corpus_dir>/Partitions.txt                # else this: "Train; MSP-PODCAST_0001_0008.wav"
    <corpus_dir>/Speaker_ids.txt               # optional: "MSP-PODCAST_0001_0008.wav; 0001"
                                               #           and "Speaker_0001; Female"

``labels_detailed.csv`` comes in two shapes; both are read:

- one column per field: ``FileName,WorkerID,EmoClass_Major,EmoClass_Second,EmoAct,EmoVal,EmoDom``
  (``Workers`` and ``EmoClass`` are accepted as names of the worker and primary columns);
- one ``EmoDetail`` cell per worker: ``FileName,EmoDetail`` with
  ``"WORKER00014; Angry; Frustrated,Annoyed; A:2.0; V:3.0; D:4.0;"``.

These shapes, and the ``Partitions.txt``/``Speaker_ids.txt`` lines, follow public loaders of
the release (its own readme is not public); the parser reports any line it cannot read.

The primary emotion is one of 8 classes (word or one-letter code) or ``Other-<free text>``;
the secondary list (comma-separated) holds classes of the 16 and possibly ``Other-<text>``.
Free text after ``Other`` may contain commas: words after it, up to the next class name,
belong to it. Votes: Primary = each worker's primary emotion; Secondary = each worker's
primary emotion plus the secondary ones, a class once per worker
(``labels.primary_plus_secondary``, as MSP-IMPROV's published files show for the same lab's
protocol). Turns whose primary emotions are all "Other" are left out of both conditions
(``Recipe.all_other_primary``), so both list the same turns. A repeated (file, worker) line
is ignored (the first counts). Attributes (1..7) are averaged over workers. Speaker ids the
release gives as ``Unknown`` stay ``Unknown`` (their gender is left empty): they name no
speaker, so they are no evidence of leakage across splits.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from tqdm import tqdm

from ...errors import CorpusLayoutError, InvalidInputError
from ...runtime.paths import Pathlike
from ..labels import EXCLUDED_OTHER, alias_table, canonical_class, is_other, primary_plus_secondary
from ..partitions import split_of_corpus_set
from .builder import recipe_preparer
from .raw import Row, index_audio, mean_scores, read_csv_rows, require_dir
from .types import Condition, PreparedCorpus, Reading, Recipe, Utterance

logger = logging.getLogger(__name__)

# Class lists in published column order (EMO-SUPERB's published config.json files).
CLASSES_PRIMARY = ("angry", "sad", "disgust", "contempt", "fear", "neutral", "surprise", "happy")
CLASSES_SECONDARY = (
    "angry",
    "frustrated",
    "annoyed",
    "disappointed",
    "sad",
    "disgust",
    "depressed",
    "contempt",
    "confused",
    "concerned",
    "fear",
    "neutral",
    "surprise",
    "amused",
    "excited",
    "happy",
)
DIMENSIONAL_RANGE = {"max_score": 7, "min_score": 1}  # attributes are rated 1..7
DIMENSION_COLUMNS = ("EmoAct", "EmoVal", "EmoDom")
UNKNOWN_SPEAKER = "Unknown"  # the release's own spelling; partitions.UNKNOWN_SPEAKERS never leak
# Accepted spellings of the detailed file's columns, newest release first.
WORKER_COLUMNS = ("WorkerID", "Workers", "Worker")
PRIMARY_COLUMNS = ("EmoClass_Major", "EmoClass", "EmoClass_Primary")
SECONDARY_COLUMNS = ("EmoClass_Second", "EmoClass_Secondary")
OTHER_CODES = ("O",)  # "Other" as a one-letter code
DUPLICATE_WORKER_POLICY = "a worker's first line for a file counts"
EXCLUDED_ALL_OTHER = f"{EXCLUDED_OTHER} in the primary emotions (left out of Primary and Secondary)"
EXCLUDED_UNLABELLED_SET = "in a set without public labels ({})"
EXCLUDED_NO_ANNOTATIONS = "listed in the partition but no annotation in labels_detailed.csv"
# Words of the MSP-PODCAST protocol (labels_detailed.csv), lower-cased -> class name; each
# release's alias table holds them.
PODCAST_WORDS = {
    "anger": "angry",
    "happiness": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "fearful": "fear",
    "disgusted": "disgust",
    "frustration": "frustrated",
    "amusement": "amused",
}

_DETAIL = re.compile(
    r"^\s*(?P<worker>[^;]+?)\s*;\s*(?P<middle>.*?)\s*;\s*A\s*:\s*(?P<EmoAct>[^;]*?)\s*;"
    r"\s*V\s*:\s*(?P<EmoVal>[^;]*?)\s*;\s*D\s*:\s*(?P<EmoDom>[^;]*?)\s*;?\s*$"
)
_PODCAST_ID = re.compile(r"^[^_]+_(\d+)_")


@dataclass(frozen=True)
class PodcastRelease:
    """What differs between releases built the MSP-PODCAST way."""

    corpus: str  # key of data_splits
    name: str  # prepared folder name
    description: str
    aliases: Mapping[str, str]  # the release's spellings (labels.alias_table)
    unlabelled_sets: tuple[str, ...] = ()


class _Annotation(NamedTuple):
    """One worker's answers for one file."""

    worker: str
    primary: str
    secondary: tuple[str, ...]
    dimensions: dict[str, float]


@dataclass
class _Meta:
    corpus_set: str
    where: str
    speaker: str = UNKNOWN_SPEAKER
    gender: str | None = None


def _is_other(token: str) -> bool:
    return is_other(token) or token.strip() in OTHER_CODES


def _known(token: str, classes: Sequence[str], aliases: Mapping[str, str]) -> bool:
    return canonical_class(token, classes, aliases) is not None


def _secondary_list(text: str, where: str, aliases: Mapping[str, str]) -> tuple[str, ...]:
    """Split a comma-separated secondary list; words right after ``Other-...`` belong to it."""
    tokens, in_other = [], False
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        if _is_other(token):
            in_other = True
        elif _known(token, CLASSES_SECONDARY, aliases):
            in_other = False
        elif in_other:
            continue  # more free text of the preceding "Other-..." answer
        else:
            raise InvalidInputError(
                f"{where}: unknown secondary emotion {token!r}; expected classes of "
                f"{list(CLASSES_SECONDARY)} or 'Other-<text>'"
            )
        tokens.append(token)
    return tuple(tokens)


def _check_primary(primary: str, where: str, aliases: Mapping[str, str]) -> str:
    if not primary:
        raise InvalidInputError(
            f"{where}: annotation has no primary emotion; expected one of {list(CLASSES_PRIMARY)} or 'Other-<text>'"
        )
    if not _is_other(primary) and not _known(primary, CLASSES_PRIMARY, aliases):
        raise InvalidInputError(
            f"{where}: unknown primary emotion {primary!r}; expected one of {list(CLASSES_PRIMARY)} "
            "(or their one-letter codes) or 'Other-<text>'"
        )
    return primary


def _dimensions(values: Mapping[str, str | None], where: str) -> dict[str, float]:
    out = {}
    for column, text in values.items():
        if text is None or not text.strip():
            continue
        try:
            out[column] = float(text)
        except ValueError:
            raise InvalidInputError(f"{where}: {column} {text!r} is not a number") from None
    return out


def _from_columns(row: Row, where: str, columns: Mapping[str, str | None], aliases: Mapping[str, str]) -> _Annotation:
    cells = row.cells
    secondary = cells[columns["secondary"]] if columns["secondary"] else ""
    return _Annotation(
        worker=cells[columns["worker"]],
        primary=_check_primary(cells[columns["primary"]], where, aliases),
        secondary=_secondary_list(secondary, where, aliases),
        dimensions=_dimensions({c: cells.get(c) for c in DIMENSION_COLUMNS}, where),
    )


def _from_detail(text: str, where: str, aliases: Mapping[str, str]) -> _Annotation:
    match = _DETAIL.match(text)
    if match is None:
        raise InvalidInputError(
            f"{where}: EmoDetail {text!r} does not read 'WORKER; Primary; Secondary,...; A:x; V:y; D:z;' "
            "(truncated line?)"
        )
    parts = match["middle"].split(";")
    if len(parts) == 1 or _known(parts[0], CLASSES_PRIMARY, aliases):
        primary, secondary = parts[0].strip(), ";".join(parts[1:])
    else:  # "Other-<text>" whose text holds ';': the secondary list is the last part
        primary, secondary = ";".join(parts[:-1]).strip(), parts[-1]
    return _Annotation(
        worker=match["worker"],
        primary=_check_primary(primary, where, aliases),
        secondary=_secondary_list(secondary, where, aliases),
        dimensions=_dimensions({c: match[c] for c in DIMENSION_COLUMNS}, where),
    )


def _pick(header: Sequence[str], candidates: Sequence[str]) -> str | None:
    return next((c for c in candidates if c in header), None)


def _read_detailed(path: Path, aliases: Mapping[str, str]) -> tuple[dict[str, list[_Annotation]], dict[str, int], int]:
    """FileName -> annotations in file order, FileName -> line of its first annotation, and the
    number of repeated (file, worker) lines ignored."""
    rows = read_csv_rows(path, ["FileName"], what="detailed labels")
    if not rows:
        raise InvalidInputError(f"{path}: no annotation rows")
    header = list(rows[0].cells)
    columns = None  # the EmoDetail shape
    if "EmoDetail" not in header:
        columns = {
            "worker": _pick(header, WORKER_COLUMNS),
            "primary": _pick(header, PRIMARY_COLUMNS),
            "secondary": _pick(header, SECONDARY_COLUMNS),
        }
        if columns["worker"] is None or columns["primary"] is None:
            raise InvalidInputError(
                f"{path}, line 1: header {header} has neither EmoDetail nor a worker column "
                f"{list(WORKER_COLUMNS)} and a primary emotion column {list(PRIMARY_COLUMNS)}"
            )
    per_file: dict[str, list[_Annotation]] = defaultdict(list)
    first_line: dict[str, int] = {}
    seen: dict[tuple[str, str], int] = {}
    repeated: list[str] = []
    for row in tqdm(rows, desc=path.name, unit="row"):
        where = f"{path}, line {row.line}"
        name = row.cells["FileName"]
        if not name:
            raise InvalidInputError(f"{where}: empty FileName")
        if columns is None:
            annotation = _from_detail(row.cells["EmoDetail"], where, aliases)
        else:
            annotation = _from_columns(row, where, columns, aliases)
        if not annotation.worker:
            raise InvalidInputError(f"{where}: empty worker id")
        if (name, annotation.worker) in seen:
            repeated.append(
                f"line {row.line} (worker {annotation.worker!r}, {name!r}; first on line "
                f"{seen[name, annotation.worker]})"
            )
            continue
        seen[name, annotation.worker] = row.line
        first_line.setdefault(name, row.line)
        per_file[name].append(annotation)
    if repeated:
        logger.warning(
            "%s: %d repeated worker line(s) ignored (%s), e.g. %s",
            path,
            len(repeated),
            DUPLICATE_WORKER_POLICY,
            repeated[0],
        )
    return per_file, first_line, len(repeated)


def _semicolon_pairs(path: Path, what: str) -> list[tuple[int, str, str]]:
    """``left; right`` lines of the release's .txt files; lines without ';' (titles) are skipped."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if ";" not in line:
            if ".wav" in line:
                raise InvalidInputError(f"{path}, line {number}: {line.strip()!r} has no ';'; expected '{what}'")
            continue
        left, _, right = (part.strip() for part in line.partition(";"))
        right = right.rstrip(";").strip()
        if not left or not right:
            raise InvalidInputError(
                f"{path}, line {number}: {line.strip()!r} is incomplete; expected '{what}' (truncated line?)"
            )
        out.append((number, left, right))
    return out


def _gender(value: str | None) -> str | None:
    value = (value or "").strip().capitalize()
    return value if value in ("Male", "Female") else None


def _check_set(corpus_set: str, where: str, release: PodcastRelease) -> str:
    if corpus_set in release.unlabelled_sets:
        return corpus_set
    try:
        split_of_corpus_set(release.corpus, corpus_set)
    except InvalidInputError as err:
        raise InvalidInputError(f"{where}: {err}") from None
    return corpus_set


def _read_consensus(path: Path, release: PodcastRelease) -> dict[str, _Meta]:
    meta: dict[str, _Meta] = {}
    for row in read_csv_rows(path, ["FileName", "Split_Set"], what="consensus labels"):
        where = f"{path}, line {row.line}"
        name = row.cells["FileName"]
        if name in meta:
            raise InvalidInputError(f"{where}: duplicate FileName {name!r} (first at {meta[name].where})")
        corpus_set = _check_set(row.cells["Split_Set"], where, release)
        speaker = row.cells.get("SpkrID") or UNKNOWN_SPEAKER
        meta[name] = _Meta(corpus_set, where, speaker, _gender(row.cells.get("Gender")))
    return meta


def _read_partitions(path: Path, release: PodcastRelease) -> dict[str, _Meta]:
    meta: dict[str, _Meta] = {}
    for number, corpus_set, name in _semicolon_pairs(path, "<Set>; <FileName>"):
        where = f"{path}, line {number}"
        if name in meta:
            raise InvalidInputError(f"{where}: duplicate file {name!r} (first at {meta[name].where})")
        meta[name] = _Meta(_check_set(corpus_set, where, release), where)
    return meta


def _apply_speaker_ids(path: Path, meta: Mapping[str, _Meta]) -> None:
    """Fill speaker and gender from ``Speaker_ids.txt`` where the consensus file gave none."""
    speaker_of: dict[str, str] = {}
    gender_of: dict[str, str | None] = {}
    for number, left, right in _semicolon_pairs(path, "<FileName>; <id>' or 'Speaker_<id>; <Gender>"):
        if left.lower().endswith(".wav"):
            if left in speaker_of:
                raise InvalidInputError(f"{path}, line {number}: duplicate file {left!r}")
            speaker_of[left] = right
        elif left.startswith("Speaker_"):
            gender_of[left.removeprefix("Speaker_")] = _gender(right)
    for name, item in meta.items():
        if item.speaker == UNKNOWN_SPEAKER and name in speaker_of:
            item.speaker = speaker_of[name]
        if item.gender is None:
            item.gender = gender_of.get(item.speaker)


def _first_file(corpus_dir: Path, *names: str) -> Path | None:
    return next((corpus_dir / n for n in names if (corpus_dir / n).is_file()), None)


def _read_meta(corpus_dir: Path, release: PodcastRelease) -> tuple[dict[str, _Meta], list[Path]]:
    consensus = _first_file(corpus_dir, "Labels/labels_consensus.csv", "Labels/labels_concensus.csv")
    partitions = _first_file(corpus_dir, "Partitions.txt", "Partition.txt", "Labels/Partitions.txt")
    speakers = _first_file(corpus_dir, "Speaker_ids.txt", "Labels/Speaker_ids.txt")
    if consensus is not None:
        meta, sources = _read_consensus(consensus, release), [consensus]
    elif partitions is not None:
        meta, sources = _read_partitions(partitions, release), [partitions]
    else:
        raise CorpusLayoutError(
            f"{corpus_dir}: no Labels/labels_consensus.csv and no Partitions.txt; one of them must give "
            "every file's set (Train, Development, Test...)"
        )
    if speakers is not None:
        _apply_speaker_ids(speakers, meta)
        sources.append(speakers)
    return meta, sources


def _votes(annotations: Sequence[_Annotation], aliases: Mapping[str, str]) -> dict[str, tuple]:
    """Primary: each worker's primary emotion; Secondary: primary plus secondary, a class once."""
    secondary = tuple(primary_plus_secondary(a.primary, a.secondary, CLASSES_SECONDARY, aliases) for a in annotations)
    return {"Primary": tuple(a.primary for a in annotations), "Secondary": secondary}


def _mean_dimensions(annotations: Sequence[_Annotation]) -> dict[str, float]:
    return mean_scores([a.dimensions for a in annotations], DIMENSION_COLUMNS)


def read_podcast_release(corpus_dir: Pathlike, release: PodcastRelease) -> Reading:
    """Parse a release laid out like MSP-PODCAST (see the module docstring).

    Keeps every annotated file of a set with public labels, in detailed-file order; files of
    ``release.unlabelled_sets`` and files without annotations are left out, by reason.
    """
    corpus_dir = require_dir(corpus_dir, f"the {release.name} release (Audios/, Labels/)")
    detailed_path = corpus_dir / "Labels" / "labels_detailed.csv"
    if not detailed_path.is_file():
        raise CorpusLayoutError(
            f"{release.name}: no {detailed_path}; pass the folder holding Labels/ and Audios/ as corpus_dir"
        )
    meta, sources = _read_meta(corpus_dir, release)
    aliases = alias_table(release.aliases)
    annotations, first_line, repeated = _read_detailed(detailed_path, aliases)
    audio = index_audio(corpus_dir / "Audios", suffixes=(".wav",))
    excluded: dict[str, list[str]] = defaultdict(list)
    utterances = []
    for name, items in annotations.items():
        where = f"{detailed_path}, line {first_line[name]}"
        if name not in meta:
            raise InvalidInputError(f"{where}: {name!r} has annotations but no set in the consensus or partition file")
        item = meta[name]
        if item.corpus_set in release.unlabelled_sets:
            excluded[EXCLUDED_UNLABELLED_SET.format(item.corpus_set)].append(name)
            continue
        if name not in audio:
            raise CorpusLayoutError(f"{where}: labelled file {name!r} has no audio in {corpus_dir / 'Audios'}")
        podcast = _PODCAST_ID.match(name)
        utterances.append(
            Utterance(
                file_name=name,
                audio_path=audio[name],
                speaker=item.speaker,
                gender=item.gender,
                session=podcast.group(1) if podcast else Path(name).stem,
                votes=_votes(items, aliases),
                dimensional=_mean_dimensions(items),
                corpus_set=item.corpus_set,
            )
        )
    for name, item in meta.items():
        if name not in annotations:
            unlabelled = item.corpus_set in release.unlabelled_sets
            excluded[EXCLUDED_UNLABELLED_SET.format(item.corpus_set) if unlabelled else EXCLUDED_NO_ANNOTATIONS].append(
                name
            )
    for reason, names in sorted(excluded.items()):
        logger.info("%s: left out %d file(s): %s", release.name, len(names), reason)
    return Reading(
        utterances,
        corpus_dir,
        [detailed_path, *sources],
        dict(excluded),
        facts={"duplicate_worker_lines_ignored": repeated},
    )


def podcast_preparer(module: str, release: PodcastRelease) -> Callable[..., PreparedCorpus]:
    """The ``prepare_<corpus>`` of a podcast release's recipe module (``builder.recipe_preparer``)."""

    def read(corpus_dir: Pathlike) -> Reading:
        return read_podcast_release(corpus_dir, release)

    return recipe_preparer(module, read, podcast_recipe(release), "There is one fold: the release's own sets.")


def podcast_recipe(release: PodcastRelease) -> Recipe:
    """The conditions, exclusions and manifest rules of a podcast release.

    Primary (8 classes) and Secondary (16 classes), one fold: the release's own sets.
    """
    conditions = (
        Condition(
            "Primary", CLASSES_PRIMARY, f"{release.description} - {len(CLASSES_PRIMARY)} classes", DIMENSIONAL_RANGE
        ),
        Condition(
            "Secondary",
            CLASSES_SECONDARY,
            f"{release.description} - {len(CLASSES_SECONDARY)} classes",
            DIMENSIONAL_RANGE,
        ),
    )
    rules = {
        "classes": "EMO-SUPERB published config.json (8 primary, 16 secondary classes)",
        "primary_votes": "each worker's primary emotion; 'Other-...' is dropped",
        "secondary_votes": "each worker's secondary emotions plus their primary emotion, counted once",
        "partition": f"the release's own sets (data_splits/{release.corpus}.toml); "
        f"left out: {list(release.unlabelled_sets) or 'none'}",
        "exclusions": [
            EXCLUDED_ALL_OTHER,
            *(EXCLUDED_UNLABELLED_SET.format(s) for s in release.unlabelled_sets),
            EXCLUDED_NO_ANNOTATIONS,
        ],
        "duplicate_worker_policy": DUPLICATE_WORKER_POLICY,
        "duplicate_worker_lines_ignored": None,  # measured by read_podcast_release
        "unknown_speakers": f"SpkrID {UNKNOWN_SPEAKER!r} names no speaker",
    }
    return Recipe(
        release.corpus, release.name, conditions, rules, all_other_primary=EXCLUDED_ALL_OTHER, aliases=release.aliases
    )
