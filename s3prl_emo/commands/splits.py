"""``splits``, ``check-splits`` and ``export-splits``: assign, audit and export partitions."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

from ..data.audit import check_splits
from ..data.export import EXPORTERS
from ..data.export_formats import AUDIO_MODES
from ..data.partitions import assign_splits, is_cross_validated, partitioned_corpora
from ..errors import InvalidInputError
from ..runtime.atomic import write_text_atomically
from .parsing import add_command


def register(subparsers: argparse._SubParsersAction) -> None:
    session_corpora = [c for c in partitioned_corpora() if is_cross_validated(c)]

    splits = add_command(subparsers, "splits", run_splits)
    splits.add_argument(
        "corpus", metavar="CORPUS", choices=session_corpora, help=f"one of {', '.join(session_corpora)}"
    )
    splits.add_argument(
        "--fold", type=int, required=True, metavar="K", default=argparse.SUPPRESS, help="fold number, 1-based"
    )
    splits.add_argument(
        "--utterances",
        type=Path,
        required=True,
        metavar="LIST",
        default=argparse.SUPPRESS,
        help="text file with one audio file name per line (blank lines are ignored)",
    )
    splits.add_argument(
        "--out", type=Path, metavar="CSV", default=None, help="write the CSV here (atomically); stdout when absent"
    )

    check = add_command(subparsers, "check-splits", run_check_splits)
    check.add_argument("corpus_dir", metavar="DIR", type=Path, help="a Primary or Secondary folder")

    export = add_command(subparsers, "export-splits", run_export_splits)
    export.add_argument("corpus_dir", metavar="DIR", type=Path, help="a Primary or Secondary folder")
    export.add_argument(
        "--format", required=True, choices=sorted(EXPORTERS), default=argparse.SUPPRESS, help="output format"
    )
    export.add_argument(
        "--out", required=True, type=Path, metavar="OUTDIR", default=argparse.SUPPRESS, help="folder to create"
    )
    export.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUTDIR if it is empty or an earlier output of export-splits (never the corpus, "
        "or a folder holding it or other files)",
    )
    export.add_argument(
        "--audio",
        choices=AUDIO_MODES,
        default=None,
        help="audiofolder only: link each split's audio to the corpus's files, or copy it [default: link]",
    )


def _read_names(path: Path) -> list[str]:
    if not path.is_file():
        raise InvalidInputError(f"--utterances {path}: no such file; expected one audio file name per line")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [n for n in names if n]


def run_splits(args: argparse.Namespace) -> int:
    """assign Train/Development/Test to audio file names for one published fold

    Print (or write) FileName,Split_Set for every name in LIST, using the session rule and fold
    table EMO-SUPERB published for CORPUS.
    """
    names = _read_names(args.utterances)
    splits = assign_splits(args.corpus, args.fold, names)  # raises before anything is written
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["FileName", "Split_Set"])
    writer.writerows(zip(names, splits, strict=True))
    if args.out is None:
        sys.stdout.write(buffer.getvalue())
        return 0
    write_text_atomically(args.out, buffer.getvalue())
    return 0


def run_check_splits(args: argparse.Namespace) -> int:
    """per-fold split sizes and a speaker/session leakage check (exit 1 on leakage)

    Check every fold of a prepared corpus for leakage. DIR is <root>/<CORPUS>/Primary or
    .../Secondary (config.json + labels_consensus_<k>.csv).
    """
    report = check_splits(args.corpus_dir)
    print(report.table())
    if report.clean:
        print("no leakage")
        return 0
    print(f"{len(report.violations)} violation(s):")
    for line in report.violations:
        print(f"  {line}")
    return 1


def run_export_splits(args: argparse.Namespace) -> int:
    """write the folds as csv, Kaldi data folders, S3PRL emotion meta-data, lhotse manifests or a
    Hugging Face audiofolder

    Export every fold of a prepared corpus. DIR is <root>/<CORPUS>/Primary or .../Secondary
    (config.json + labels_consensus_<k>.csv). For s3prl-emotion, pass <root>/<CORPUS>/Audios as the
    emotion downstream's datarc.root and OUTDIR as its datarc.meta_data. lhotse needs the optional
    dependency: pip install 's3prl-emo[lhotse]'.
    """
    options = {}
    if args.audio is not None:
        if args.format != "audiofolder":
            raise InvalidInputError(f"--audio applies to --format audiofolder only, not {args.format}")
        options["audio"] = args.audio
    summary = EXPORTERS[args.format](args.corpus_dir, args.out, overwrite=args.overwrite, **options)
    left = sum(summary.left_out.values())
    extra = f"; {left} utterance(s) left out (label outside neu/hap/ang/sad)" if summary.left_out else ""
    folds = ", ".join(map(str, summary.folds))
    print(f"wrote {summary.format} for fold(s) {folds} to {summary.out_dir}{extra}")
    if args.format == "s3prl-emotion":
        from ..data.export import s3prl_emotion_audio_problem

        problem = s3prl_emotion_audio_problem()
        if problem:
            print(f"note: {problem}")
    return 0
