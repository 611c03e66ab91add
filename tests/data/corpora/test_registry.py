"""The one registry: each recipe's record, and everything that reads its per-corpus facts from it."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from s3prl_emo.cli import main
from s3prl_emo.data.corpora import CORPORA, alias_tables, published_conditions
from s3prl_emo.data.labels import alias_table, canonical_class, soft_labels
from s3prl_emo.data.partitions import corpus_key, partitioned_corpora
from s3prl_emo.errors import InvalidInputError
from s3prl_emo.report.published import CONDITIONS, published_table

# The nine EMO-SUPERB conditions (the paper's Table 3), written out here independently of the recipes.
NINE = {"IMPROV_P", "CREMA-D", "PODCAST_P", "BPODCAST_P", "IEMOCAP", "NNIME", "IMPROV_S", "PODCAST_S", "BPODCAST_S"}


@pytest.mark.parametrize("key", sorted(CORPORA))
def test_each_record_is_declared_once_by_its_recipe_module(key: str) -> None:
    record = CORPORA[key]
    module = importlib.import_module(record.module)
    assert record.key == key
    assert module.RECORD is record
    assert record.read.__module__ == record.prepare.__module__ == record.module
    assert record.description == module.__doc__
    assert record.summary.endswith(".")
    assert record.aliases is getattr(module, "ALIASES", None)


@pytest.mark.parametrize("key", sorted(k for k, r in CORPORA.items() if r.conditions))
def test_a_corpus_with_published_folds_has_its_partition_file_under_its_key(key: str) -> None:
    record = CORPORA[key]
    assert key in partitioned_corpora()
    assert corpus_key(record.name) == key  # data_splits/<key>.toml lists the prepared folder


def test_the_generic_recipe_takes_its_name_and_classes_from_the_user() -> None:
    generic = CORPORA["generic"]
    assert generic.key not in partitioned_corpora()
    assert generic.conditions == ()
    assert generic.published == ()
    assert generic.output_name({"name": "MINE"}) == "MINE"
    assert generic.output_name({}) == "GENERIC"
    with pytest.raises(InvalidInputError, match="--name 'a/b'"):
        generic.output_name({"name": "a/b"})


def test_the_nine_published_conditions_are_declared_once_and_match_table3() -> None:
    assert set(CONDITIONS) == NINE
    assert len(CONDITIONS) == len(NINE)
    assert set(published_table().columns) - {"paper_name", "params_m", "Average"} == NINE


@pytest.mark.parametrize("name", sorted(NINE))
def test_each_published_condition_has_configs_that_train_on_its_corpus(repo_root: Path, name: str) -> None:
    corpus, condition = published_conditions()[name]
    classes = next(c.classes for c in corpus.conditions if c.annotation == condition.annotation)
    assert len(classes) >= 4
    for stem in (name, f"SOTA_{name}"):
        datarc = yaml.safe_load((repo_root / "downstream_configs" / f"{stem}.yaml").read_text())["downstream_expert"][
            "datarc"
        ]
        assert (datarc["corpus"], datarc["p_or_s"]) == (corpus.name, condition.annotation), stem


TASK_SUFFIXES = ("_attributes", "_both")


def test_every_shipped_condition_config_belongs_to_a_registered_corpus(repo_root: Path) -> None:
    configs = sorted((repo_root / "downstream_configs").glob("*.yaml"))
    stems = {p.stem.removeprefix("SOTA_") for p in configs if not p.stem.endswith(TASK_SUFFIXES)}
    assert stems - {"SYNTH"} == NINE


def test_attribute_task_configs_train_on_the_corpus_of_their_condition(repo_root: Path) -> None:
    configs = [p for p in (repo_root / "downstream_configs").glob("*.yaml") if p.stem.endswith(TASK_SUFFIXES)]
    assert configs
    for path in configs:
        base = path.stem.removesuffix("_attributes").removesuffix("_both")
        assert base in NINE | {"SYNTH"}, path.name
        datarc = yaml.safe_load(path.read_text())["downstream_expert"]["datarc"]
        base_datarc = yaml.safe_load((path.parent / f"{base}.yaml").read_text())["downstream_expert"]["datarc"]
        assert (datarc["corpus"], datarc["p_or_s"]) == (base_datarc["corpus"], base_datarc["p_or_s"]), path.name


@pytest.mark.parametrize("key", sorted(alias_tables()))
def test_alias_keys_resolve_to_the_recipe_table(key: str) -> None:
    record = CORPORA[key]
    classes = sorted({c for condition in record.conditions for c in condition.classes})
    assert alias_table(key) is record.aliases
    for raw, name in record.aliases.items():
        if name in classes:
            assert canonical_class(raw.upper(), classes, aliases=key) == name
    first_raw, first_class = next((r, n) for r, n in record.aliases.items() if n in classes)
    wanted = np.zeros(len(classes))
    wanted[classes.index(first_class)] = 1.0
    np.testing.assert_allclose(soft_labels([first_raw], classes, 0.0, aliases=key), wanted)


def test_common_aliases_are_what_every_table_agrees_on() -> None:
    from s3prl_emo.data import labels

    common = labels.COMMON_ALIASES
    assert common["neutral state"] == "neutral"
    assert common["s"] == "sad"
    for raw, name in common.items():
        assert all(table.get(raw, name) == name for table in alias_tables().values()), raw
    with pytest.raises(TypeError):
        common["s"] = "happy"  # read-only: derived from the recipes' tables
    with pytest.raises(InvalidInputError, match="unknown alias table 'generic'; expected one of"):
        soft_labels(["sad"], ["sad", "happy"], aliases="generic")


def test_prepare_lists_every_registered_corpus(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    listing = " ".join(capsys.readouterr().out.split())
    for key, record in CORPORA.items():
        assert key in listing
        assert record.summary[:40] in listing
    with pytest.raises(SystemExit):
        main(["prepare", "msp-improv", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "Evalution.txt" in shown  # the recipe's raw tree
    assert "IMPROV_P (IMPROV/Primary), IMPROV_S (IMPROV/Secondary)" in shown


def test_claim_checks_flags_and_output_before_the_release_is_read(tmp_path: Path) -> None:
    missing = tmp_path / "no-release"
    with pytest.raises(InvalidInputError, match="--smoothing"):
        CORPORA["iemocap"].claim(missing, tmp_path / "out", smoothing=1.5)
    (tmp_path / "out" / "IEMOCAP").mkdir(parents=True)
    (tmp_path / "out" / "IEMOCAP" / "mine.txt").write_text("not an output of prepare")
    with pytest.raises(InvalidInputError, match="out/IEMOCAP"):
        CORPORA["iemocap"].claim(missing, tmp_path / "out")
    assert CORPORA["crema-d"].claim(missing, tmp_path / "out").name == "CREMA-D"
    assert not missing.exists()


def test_the_registry_imports_without_torch_or_reading_data_files() -> None:
    """Importing the registry opens no file but code: the partition files and tables are read on use."""
    code = (
        "import sys\n"
        "opened = []\n"
        "sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == 'open' else None)\n"
        "import s3prl_emo.data.corpora\n"
        "import json\n"
        "print(json.dumps({'torch': 'torch' in sys.modules,\n"
        "                  'data': [p for p in opened if 's3prl_emo' in p or 'data_splits' in p\n"
        "                           if not p.endswith(('.py', '.pyc')) and '__pycache__' not in p]}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    facts = json.loads(result.stdout)
    assert facts["torch"] is False
    assert facts["data"] == []
    lazy = "import sys, s3prl_emo.data.labels; print('s3prl_emo.data.corpora' in sys.modules)"
    lazy = subprocess.run([sys.executable, "-c", lazy], capture_output=True, text=True, check=True)
    assert lazy.stdout.strip() == "False"  # labels looks the registry up on first use, not at import
