"""``write_text_atomically``: a rewrite is a new file renamed into place, with or without the old one first."""

import os

import pytest

from s3prl_emo.runtime.atomic import write_text_atomically


@pytest.mark.parametrize("replace", [True, False])
def test_a_rewrite_is_a_new_file_and_a_link_keeps_the_old_one(tmp_path, replace):
    path = tmp_path / "exp" / "dev_fold1_predict.txt"
    write_text_atomically(path, "a.wav ang\n", replace=replace)
    kept = tmp_path / "kept.txt"
    os.link(path, kept)  # what the dev-best snapshot does

    write_text_atomically(path, "a.wav hap\n", replace=replace)

    assert path.read_text() == "a.wav hap\n"
    assert kept.read_text() == "a.wav ang\n"  # never written in place
    assert sorted(p.name for p in path.parent.iterdir()) == ["dev_fold1_predict.txt"]  # no .partial left


def test_a_failed_write_leaves_the_old_file_and_nothing_partial(tmp_path):
    path = tmp_path / "metrics.json"
    write_text_atomically(path, "{}\n")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomically(path, "\ud800", replace=False)  # a lone surrogate cannot be encoded
    assert path.read_text() == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
