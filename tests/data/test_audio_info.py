"""``audio_info``: a file's header read once while the file stays the same."""

import os

import numpy as np
import soundfile as sf

from s3prl_emo.data import audio
from s3prl_emo.data.audio import audio_info


def test_a_header_is_read_once_and_again_when_the_file_changes(tmp_path, monkeypatch):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(1600, dtype=np.float32), 16_000)
    reads = []
    real = sf.info
    monkeypatch.setattr(audio.sf, "info", lambda p: reads.append(p) or real(p))
    audio._header.cache_clear()
    assert audio_info(path).frames == 1600
    assert audio_info(str(path)).frames == 1600
    assert len(reads) == 1
    sf.write(path, np.zeros(3200, dtype=np.float32), 16_000)  # another size
    os.utime(path, ns=(0, 123_456_789))
    assert audio_info(path).frames == 3200
    assert len(reads) == 2
