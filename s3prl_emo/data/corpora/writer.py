"""Write a prepared corpus in the EMO-SUPERB layout, staged so that a failed run leaves nothing.

Output: ``<output_dir>/<name>/Audios/<FileName>`` (symlink or copy),
``<name>/<annotation>/config.json`` and ``labels_consensus_<k>.csv`` per condition and fold,
and ``<name>/manifest.json`` (sources with sha256, package version, rules, exclusions).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from ...errors import CorpusLayoutError, InvalidInputError
from ...runtime.guards import claim_output_dir, staged_output
from ...runtime.paths import Pathlike
from ..layout import CorpusConfig, labels_path, plain_file_name_problem, write_config, write_labels
from .types import PreparedCorpus

logger = logging.getLogger(__name__)

AUDIO_MODES = ("symlink", "copy")
COMMAND = "prepare"  # the marker of ``guards.staged_output``: only ``prepare`` replaces its own output
FLAG = "--output-dir"


def claim_corpus_dir(
    output_dir: Pathlike, name: str, *, inputs: Iterable[Pathlike] = (), overwrite: bool = False
) -> Path:
    """Check, before any work, that ``<output_dir>/<name>`` may be written; returns it.

    It may if it does not exist or is empty; with ``overwrite``, also if it is an earlier
    output of ``s3prl-emo prepare`` (its marker file). Never a file, a symbolic link, a
    folder of other content, the raw corpus or a folder that holds one of ``inputs``.

    Raises:
        InvalidInputError: naming ``--output-dir``, the folder and why.

    Examples:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> claim_corpus_dir(root / "out", "GENERIC", inputs=[root / "raw"]).name
        'GENERIC'
    """
    final = claim_output_dir(Path(output_dir) / name, command=COMMAND, inputs=inputs, flag=FLAG)
    if final.is_symlink():
        raise InvalidInputError(f"{FLAG} {final}: is a symbolic link; the corpus folder is replaced, never followed")
    if final.is_dir() and any(final.iterdir()) and not overwrite:
        raise InvalidInputError(
            f"{final} already exists (an earlier output of s3prl-emo prepare); pass --overwrite to replace it"
        )
    return final


def check_utterances(prepared: PreparedCorpus) -> None:
    """Every file name is a plain name of the flat ``Audios/`` folder and every audio a regular file.

    A name such as ``../../x.wav`` would put the link or copy outside the output folder; a
    FIFO or device as audio would block the copy. Checked before anything is written.

    Raises:
        InvalidInputError: naming the utterance and its audio path.
        CorpusLayoutError: an audio file is missing.
    """
    for utt in prepared.utterances:
        problem = plain_file_name_problem(utt.file_name)
        if problem:
            raise InvalidInputError(f"{prepared.name}: FileName {utt.file_name!r} (audio {utt.audio_path}) {problem}")
        if not os.path.exists(utt.audio_path):
            raise CorpusLayoutError(f"{utt.audio_path}: audio of {utt.file_name} is missing")
        if not utt.audio_path.is_file():
            raise InvalidInputError(
                f"{utt.audio_path}: audio of {utt.file_name} is not a regular file (a folder, FIFO or device)"
            )


def write_corpus(
    prepared: PreparedCorpus,
    output_dir: Pathlike,
    *,
    audio: str = "symlink",
    overwrite: bool = False,
    inputs: Iterable[Pathlike] = (),
) -> Path:
    """Write ``<output_dir>/<name>/`` in the EMO-SUPERB layout; returns that folder.

    Staged in a temporary sibling and moved into place only when complete, so a failed run
    leaves nothing at the destination (``guards.staged_output``). The folder gets the
    marker of ``s3prl-emo prepare``; ``overwrite`` replaces only such an earlier output,
    never a folder of other content or one that holds ``inputs`` (the raw corpus, the label
    files). ``audio``: "symlink" (absolute links) or "copy".
    """
    if audio not in AUDIO_MODES:
        raise InvalidInputError(f"write_corpus: audio={audio!r}; expected one of {list(AUDIO_MODES)}")
    inputs = list(inputs)
    final = claim_corpus_dir(output_dir, prepared.name, inputs=inputs, overwrite=overwrite)
    check_utterances(prepared)
    with staged_output(final, command=COMMAND, inputs=inputs, flag=FLAG) as stage:
        audios = stage / "Audios"
        audios.mkdir()
        for utt in tqdm(prepared.utterances, desc=f"{prepared.name} audio ({audio})", unit="file"):
            target = audios / utt.file_name
            if audio == "copy":
                shutil.copy2(utt.audio_path, target)
            else:
                target.symlink_to(utt.audio_path.resolve())
        for annotation, cond in prepared.conditions.items():
            folder = stage / annotation
            folder.mkdir()
            write_config(
                CorpusConfig(
                    classes=cond.condition.classes,
                    description=cond.condition.description,
                    dimensional=cond.condition.dimensional_range,
                ),
                folder,
            )
            for fold, frame in cond.frames.items():
                write_labels(frame, labels_path(folder, fold))
        manifest = dict(prepared.manifest, audio=audio)
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    logger.info("%s: wrote %s", prepared.name, final)
    return final
