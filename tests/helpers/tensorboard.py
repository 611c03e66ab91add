"""Reads a tensorboard events file back (no tensorboard package needed)."""

from __future__ import annotations

import struct
from pathlib import Path


def events(expdir: Path) -> list:
    """The events of the folder's one ``events.out.tfevents.*`` file (TFRecord framing: the length,
    its CRC, the record, its CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    (path,) = Path(expdir).glob("events.out.tfevents.*")
    data, at, found = path.read_bytes(), 0, []
    while at < len(data):
        (length,) = struct.unpack("<Q", data[at : at + 8])
        found.append(Event.FromString(data[at + 12 : at + 12 + length]))
        at += 12 + length + 4
    return found


def scalars(expdir: Path) -> dict[tuple[str, int], float]:
    """The scalars of the folder's events file by tag and step."""
    return {(value.tag, event.step): value.simple_value for event in events(expdir) for value in event.summary.value}
