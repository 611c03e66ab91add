"""``resolve_all`` is ``Path.resolve`` of each path, whatever links lie on the way."""

import os

from s3prl_emo.runtime.paths import resolve_all


def test_resolve_all_equals_resolving_each_path(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.wav").write_bytes(b"a")
    (tmp_path / "elsewhere.wav").write_bytes(b"b")
    (tmp_path / "linked").symlink_to(real)  # a linked folder
    (real / "link.wav").symlink_to(tmp_path / "elsewhere.wav")  # a linked file: its target
    monkeypatch.chdir(real)
    paths = [
        real / "a.wav",
        tmp_path / "linked" / "a.wav",
        tmp_path / "linked" / "link.wav",
        tmp_path / "linked" / "missing.wav",
        tmp_path / "linked" / "..",
        "a.wav",
        os.path.join("..", "linked", "a.wav"),
    ]
    resolved = resolve_all(paths)
    assert resolved == [type(real)(p).resolve() for p in paths]
    assert resolved[2] == (tmp_path / "elsewhere.wav").resolve()
