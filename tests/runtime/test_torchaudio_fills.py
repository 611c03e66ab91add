"""The torchaudio names S3PRL 0.4.18 needs: filled on torchaudio >= 2.9 only, and only what is missing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types

import pytest

from s3prl_emo.data.export import s3prl_emotion_audio_problem
from s3prl_emo.runtime import torchaudio_fills
from s3prl_emo.runtime.torchaudio_fills import SoxEffectsRemovedError


def _torchaudio_version() -> tuple[int, int]:
    from importlib.metadata import version

    return tuple(int(n) for n in re.findall(r"\d+", version("torchaudio"))[:2])


NEW_TORCHAUDIO = _torchaudio_version() >= (2, 9)

FRESH_INTERPRETER = r"""
import importlib.util, json, logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="LOG %(name)s %(message)s")
import torchaudio
before = {"set_audio_backend": hasattr(torchaudio, "set_audio_backend"),
          "sox_effects": importlib.util.find_spec("torchaudio.sox_effects") is not None}
import s3prl.hub
from s3prl_emo.runtime.torchaudio_fills import fill_missing
torchaudio.set_audio_backend("sox_io")
sox = sys.modules["torchaudio.sox_effects"]
print(json.dumps({"before": before, "again": fill_missing(), "sox_file": getattr(sox, "__file__", None),
                  "fbank": callable(s3prl.hub.fbank)}))
"""


def test_importing_s3prl_fills_only_what_this_torchaudio_lacks():
    """In a fresh interpreter with the installed hook: ``import s3prl.hub`` works on either stack."""
    out = subprocess.run([sys.executable, "-c", FRESH_INTERPRETER], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    result = json.loads(lines[-1])
    fills = [line for line in lines if line.startswith("LOG s3prl_emo.runtime.torchaudio_fills")]
    assert result["fbank"]
    assert result["again"] == []
    if NEW_TORCHAUDIO:
        assert result["before"] == {"set_audio_backend": False, "sox_effects": False}
        assert len(fills) == 2  # each fill logged once
        assert "torchaudio.set_audio_backend" in fills[0]
        assert "torchaudio.sox_effects" in fills[1]
        assert result["sox_file"] is None  # the placeholder
    else:
        assert result["before"] == {"set_audio_backend": True, "sox_effects": True}
        assert fills == []
        assert result["sox_file"].endswith(".py")  # torchaudio's own module, untouched
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in out.stdout + out.stderr


@pytest.fixture
def bare_torchaudio(monkeypatch):
    """A torchaudio without either name, standing in for torchaudio >= 2.9 on any stack."""
    fake = types.ModuleType("torchaudio")
    fake.__version__ = "9.9.0"
    fake.__path__ = []  # a package with no submodules
    monkeypatch.setitem(sys.modules, "torchaudio", fake)
    monkeypatch.delitem(sys.modules, "torchaudio.sox_effects", raising=False)
    return fake


def test_fills_are_logged_once_and_leave_present_names_alone(bare_torchaudio, caplog):
    with caplog.at_level("DEBUG", logger="s3prl_emo.runtime.torchaudio_fills"):
        assert torchaudio_fills.fill_missing() == ["torchaudio.set_audio_backend", "torchaudio.sox_effects"]
        assert torchaudio_fills.fill_missing() == []
    assert len(caplog.records) == 2
    assert all(r.levelname == "DEBUG" for r in caplog.records)
    assert bare_torchaudio.set_audio_backend("soundfile") is None
    assert sys.modules["torchaudio.sox_effects"] is bare_torchaudio.sox_effects


def test_a_present_set_audio_backend_is_kept(bare_torchaudio):
    own = bare_torchaudio.set_audio_backend = lambda backend: backend
    assert torchaudio_fills.fill_missing() == ["torchaudio.sox_effects"]
    assert bare_torchaudio.set_audio_backend is own


def test_sox_placeholder_names_the_s3prl_module_that_needed_it(bare_torchaudio):
    torchaudio_fills.fill_missing()
    caller = {"__name__": "s3prl.downstream.speech_commands.dataset"}
    exec(
        "from torchaudio.sox_effects import apply_effects_file\n"
        "def load(path):\n    return apply_effects_file(path, [['rate', '16000']])",
        caller,
    )
    with pytest.raises(
        SoxEffectsRemovedError,
        match=r"s3prl\.downstream\.speech_commands\.dataset calls torchaudio\.sox_effects"
        r"\.apply_effects_file, which torchaudio 9\.9\.0 no longer has",
    ):
        caller["load"]("a.wav")


def test_a_torchaudio_that_fails_to_import_is_left_to_s3prl(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchaudio", None)  # import raises ImportError
    assert torchaudio_fills.fill_missing() == []


def test_s3prl_emotion_audio_requirement_is_stated_where_it_matters():
    problem = s3prl_emotion_audio_problem()
    if not NEW_TORCHAUDIO:
        assert problem is None  # torchaudio.load has its own backends up to 2.8
    elif problem is not None:
        assert "torchcodec" in problem
        assert "FFmpeg" in problem
