"""Attribute columns (EmoAct, EmoVal, EmoDom): read as the label file has them, or refused naming
file, line and column."""

import json
import shutil

import pytest

from s3prl_emo.data.fold import FoldData, fold_attributes
from s3prl_emo.data.layout import CorpusConfig, attribute_range, read_config, read_labels, write_config
from s3prl_emo.errors import InvalidInputError

IEMOCAP_CLASSES = ("frustrated", "angry", "sad", "disgust", "excited", "fear", "neutral", "surprise", "happy")


@pytest.fixture
def iemocap(tmp_path, repo_root):
    """A label folder holding rows in the published IEMOCAP Secondary format (config.json without "dimensional")."""
    label_dir = tmp_path / "IEMOCAP" / "Secondary"
    label_dir.mkdir(parents=True)
    (tmp_path / "IEMOCAP" / "Audios").mkdir()
    write_config(CorpusConfig(IEMOCAP_CLASSES), label_dir)
    published = repo_root / "tests/data/corpora/expected/iemocap_secondary_fold4.csv"
    shutil.copy(published, label_dir / "labels_consensus_1.csv")
    return label_dir / "labels_consensus_1.csv"


def load(label_file):
    """The fold as ``load_fold`` reads it (the rows here are one split only, which it would refuse)."""
    config = read_config(label_file.parent)
    frame = read_labels(label_file, config.classes)
    return FoldData(label_file, label_file.parent, config.classes, frame, "IEMOCAP", config.dimensional)


def test_published_iemocap_columns_are_read_as_they_are(iemocap):
    names, values = fold_attributes(load(iemocap))
    assert names == ("EmoAct", "EmoVal", "EmoDom")
    # line 2 of the file: ...,2.333333,2.666667,2.0,...
    assert values[0].tolist() == [2.333333, 2.666667, 2.0]
    assert values.min() >= 1.0
    assert values.max() <= 5.0
    assert fold_attributes(load(iemocap), ["EmoVal"])[1][:, 0].tolist() == values[:, 1].tolist()


def edit(label_file, line, column, value):
    rows = label_file.read_text().splitlines()
    header = rows[0].split(",")
    cells = rows[line - 1].split(",")
    cells[header.index(column)] = value
    rows[line - 1] = ",".join(cells)
    label_file.write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("value", ["high", "", "nan", "inf"])
def test_a_bad_value_is_refused_naming_file_line_and_column(iemocap, value):
    edit(iemocap, 4, "EmoVal", value)
    with pytest.raises(InvalidInputError, match=r"labels_consensus_1\.csv, line 4 \(.*\), column EmoVal"):
        fold_attributes(load(iemocap))


def test_a_missing_column_is_refused_naming_it(iemocap):
    with pytest.raises(InvalidInputError, match=r"labels_consensus_1\.csv: no attribute column\(s\) \['EmoLik'\]"):
        fold_attributes(load(iemocap), ["EmoAct", "EmoLik"])
    text = iemocap.read_text().replace(",EmoAct,EmoVal,EmoDom", "")
    iemocap.write_text("\n".join(",".join(r.split(",")[:10] + r.split(",")[13:]) for r in text.splitlines()[1:]))
    iemocap.write_text(text.splitlines()[0] + "\n" + iemocap.read_text() + "\n")
    with pytest.raises(InvalidInputError, match="no Emo\\* column"):
        fold_attributes(load(iemocap))


def test_config_range_is_enforced_where_the_corpus_declares_one(iemocap):
    config = json.loads((iemocap.parent / "config.json").read_text())
    config["dimensional"] = {"max_score": 5, "min_score": 1}
    (iemocap.parent / "config.json").write_text(json.dumps(config))
    assert fold_attributes(load(iemocap))[1].max() <= 5
    edit(iemocap, 3, "EmoDom", "6.5")
    with pytest.raises(InvalidInputError, match=r"line 3 .*column EmoDom: '6.5' is outside .*\[1, 5\]"):
        fold_attributes(load(iemocap))
    with pytest.raises(InvalidInputError, match="min_score < max_score"):
        attribute_range({"min_score": 5, "max_score": 1}, "config.json")
