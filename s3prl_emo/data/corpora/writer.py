"""Write a prepared corpus in the EMO-SUPERB layout, staged so that a failed run leaves nothing.

Output: ``<output_dir>/<name>/Audios/<FileName>`` (symlink or copy),
``<name>/<annotation>/config.json`` and ``labels_consensus_<k>.csv`` per condition and fold,
and ``<name>/manifest.json`` (sources with sha256, package version, rules, exclusions).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from tqdm import tqdm

from ...errors import CorpusLayoutError, InvalidInputError
from ...runtime.atomic import staged_dir
from ..layout import CorpusConfig, Pathlike, labels_path, write_config, write_labels
from .types import PreparedCorpus

logger = logging.getLogger(__name__)

AUDIO_MODES = ("symlink", "copy")


def write_corpus(
    prepared: PreparedCorpus, output_dir: Pathlike, *, audio: str = "symlink", overwrite: bool = False
) -> Path:
    """Write ``<output_dir>/<name>/`` in the EMO-SUPERB layout; returns that folder.

    Staged in a temporary sibling and moved into place only when complete, so a failed run
    leaves nothing at the destination. ``audio``: "symlink" (absolute links) or "copy".
    """
    if audio not in AUDIO_MODES:
        raise InvalidInputError(f"write_corpus: audio={audio!r}; expected one of {list(AUDIO_MODES)}")
    final = Path(output_dir) / prepared.name
    with staged_dir(final, overwrite=overwrite) as stage:
        audios = stage / "Audios"
        audios.mkdir()
        for utt in tqdm(prepared.utterances, desc=f"{prepared.name} audio ({audio})", unit="file"):
            if not utt.audio_path.is_file():
                raise CorpusLayoutError(f"{utt.audio_path}: audio of {utt.file_name} is missing")
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
