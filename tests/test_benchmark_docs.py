"""The benchmark figures in the docs are the ones the benchmarks wrote (benchmarks/results/*.json)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("benchmark_docs", ROOT / "benchmarks" / "docs.py")
docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(docs)

BLOCKS = [(page, m["name"], m["body"]) for page in docs.pages() for m in docs.BLOCK.finditer(page.read_text())]


def test_every_committed_result_is_shown_in_the_docs():
    shown = {name for _, name, _ in BLOCKS}
    assert shown == {p.stem for p in docs.RESULTS.glob("*.json")}


@pytest.mark.parametrize(("page", "name", "body"), BLOCKS, ids=[f"{p.name}:{n}" for p, n, _ in BLOCKS])
def test_a_table_in_the_docs_equals_its_json(page, name, body):
    assert body.strip("\n") == docs.render(name).strip("\n"), (
        f"{page}: the {name} table differs from benchmarks/results/{name}.json; run python benchmarks/docs.py"
    )


def test_a_figure_typed_into_a_table_is_caught(tmp_path):
    page, _name, body = BLOCKS[0]
    edited = page.read_text().replace(body, body.replace("|", "| 9.9 |", 1), 1)
    assert docs.refresh(edited) != edited
