"""The store key names the audio reader by a fixed value; these samples pin what that reader does.

Stores written before a module moved or was reformatted stay valid because the key does not hash
source text. In return, a change in how a file becomes the upstream's input (reading, soxr
resampling, channel averaging, cropping, padding, normalising) must show here, and must come with
a new ``AUDIO_READER`` value.
"""

import numpy as np
import pytest
import soundfile as sf

from s3prl_emo.data.fold import AudioStore, Normalizer
from s3prl_emo.training.one_pass import AUDIO_READER

# name: (rate, channels, seconds, subtype), then (samples, sum, sum of squares, the sample at a third)
PINNED = {
    "mono16k.wav": ((16000, 1, 1.3, "PCM_16"), (20800, -2116.0987, 24463.824, -1.5831952)),
    "stereo44k.flac": ((44100, 2, 0.9, "PCM_24"), (14400, -292.8332, 9430.5612, 0.47763962)),
    "mono8k.wav": ((8000, 1, 0.5, "FLOAT"), (8000, -370.54121, 9356.5518, 1.2578833)),
    "short.wav": ((16000, 1, 0.05, "PCM_16"), (1600, -1.0896157, 1024.735, 1.2686583)),
    "long22k.wav": ((22050, 1, 2.5, "PCM_16"), (32000, -2554.186, 37437.528, 1.6660326)),
}


def _signal(rate: int, channels: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    wav = 0.3 * np.sin(2 * np.pi * (150 + 40 * np.sin(3 * t)) * t) + 0.05 * np.sin(12345.678 * t * t)
    return np.stack([wav, 0.5 * wav + 0.01], axis=1) if channels == 2 else wav


def test_the_reader_named_in_store_keys_still_produces_the_pinned_samples(tmp_path):
    for name, ((rate, channels, seconds, subtype), _) in PINNED.items():
        sf.write(tmp_path / name, _signal(rate, channels, seconds), rate, subtype=subtype)
    store = AudioStore(tmp_path, 2.0, pre_load=False, cache_dir=None)
    normalize = Normalizer(0.01, 0.2)
    for name, (_, (samples, total, energy, third)) in PINNED.items():
        wav = normalize(store.get(name)).astype(np.float64)
        found = (len(wav), wav.sum(), (wav * wav).sum(), wav[len(wav) // 3])
        assert found == pytest.approx((samples, total, energy, third), rel=1e-5, abs=1e-3), (
            f"{name}: the audio reader changed ({found}); give it a new AUDIO_READER value ({AUDIO_READER})"
        )
