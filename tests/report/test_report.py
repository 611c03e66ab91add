"""The report's aggregation rules on hand-made result.json files (the slow sweep test runs it for real)."""

import math

import numpy as np
import pandas as pd
import pytest

from s3prl_emo.cli import main
from s3prl_emo.report.results import load_sweep
from s3prl_emo.report.tables import leaderboard
from s3prl_emo.runtime.atomic import write_json_atomically
from s3prl_emo.sweep.plan import RESULT_FILE, RunSpec, write_plan

CLASSES = ["angry", "sad", "neutral", "happy"]


def _result(spec: RunSpec, dev: float, test: float, layers: int | None) -> dict:
    per_class = {f"f1/{c}": test for c in CLASSES}
    return {
        **spec.to_json(),
        "classes": CLASSES,
        "dev": {"macro_f1": dev},
        "test": {"macro_f1": test, **per_class},
        "layer_weights": None if layers is None else list(np.linspace(0, 1, layers)),
        "cooccurrence": np.eye(len(CLASSES), dtype=int).tolist(),
    }


def _spec(upstream: str, condition: str, fold: int, lr: str) -> RunSpec:
    return RunSpec(upstream, None, condition, f"{condition}.yaml", fold, {"optimizer.lr": lr}, "/data")


@pytest.fixture
def results(tmp_path):
    """wavlm_large: 3 conditions x 2 learning rates x 2 folds, all done. lr 1e-3 has the better dev
    score and the worse test score. fbank: IEMOCAP has 1 of 2 folds done."""
    specs, scores = [], {}
    for upstream in ("wavlm_large", "fbank"):
        for condition in ("IEMOCAP", "CREMA-D", "IMPROV_P"):
            for lr, dev, test in (("1e-3", 0.6, 0.40), ("1e-4", 0.5, 0.50)):
                for fold in (1, 2):
                    spec = _spec(upstream, condition, fold, lr)
                    specs.append(spec)
                    if not (upstream == "fbank" and condition == "IEMOCAP" and fold == 2):
                        scores[spec.key] = (dev, test + 0.02 * fold)
    out = tmp_path / "results"
    write_plan(out, specs)
    for spec in specs:
        if spec.key in scores:
            layers = 25 if spec.upstream == "wavlm_large" else None
            write_json_atomically(out / spec.key / RESULT_FILE, _result(spec, *scores[spec.key], layers))
    return out


def test_grid_point_is_chosen_by_dev_score_never_test(results):
    sweep = load_sweep(results)
    cell = sweep.cells[("wavlm_large", "IEMOCAP")]
    assert cell.grid == "optimizer.lr=1e-3"
    assert cell.mean == pytest.approx(0.43)
    assert cell.std == pytest.approx(np.std([0.42, 0.44], ddof=1))


def test_incomplete_cells_are_marked_and_never_averaged(results):
    board = leaderboard(load_sweep(results)).set_index("upstream")
    assert board.loc["fbank", "IEMOCAP folds"] == 1
    assert board.loc["fbank", "IEMOCAP expected"] == 2
    assert math.isnan(board.loc["fbank", "Average"])
    assert board.loc["wavlm_large", "Average"] == pytest.approx(0.43)


def test_published_rows_sit_next_to_the_measured_ones(results):
    board = leaderboard(load_sweep(results), with_published=True)
    assert list(zip(board["upstream"], board["source"], strict=True)) == [
        ("wavlm_large", "measured"),
        ("wavlm_large", "published"),
        ("wavlm_large", "difference"),
        ("fbank", "measured"),
        ("fbank", "published"),
        ("fbank", "difference"),
    ]
    published = board[(board["upstream"] == "wavlm_large") & (board["source"] == "published")].iloc[0]
    assert published["IEMOCAP mean"] == 0.336
    assert published["IMPROV_P mean"] == 0.559
    difference = board[(board["upstream"] == "wavlm_large") & (board["source"] == "difference")].iloc[0]
    assert difference["IEMOCAP mean"] == pytest.approx(0.43 - 0.336)


def test_report_command_writes_tables_charts_and_index(results, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out), "--with-published"]) == 0
    markdown = (out / "leaderboard.md").read_text()
    assert "| fbank | " in markdown
    assert "incomplete: 1 of 2 folds" in markdown
    assert "*wavlm_large (published)*" in markdown
    assert "| 0.336 |" in markdown
    assert pd.read_csv(out / "leaderboard.csv").shape[0] == 6
    charts = {p.name for p in (out / "charts").iterdir()}
    assert "conditions.png" in charts  # a radar: three conditions
    assert "layers_wavlm_large_IEMOCAP.png" in charts
    assert "layers_fbank_IEMOCAP.png" not in charts
    assert {"f1_fbank_IEMOCAP.png", "cooccurrence_wavlm_large_IMPROV_P.png"} <= charts
    index = (out / "index.html").read_text()
    assert "Incomplete sweep: 22 of 24 planned runs finished" in index  # fold 2 of fbank/IEMOCAP, both grid points
    assert "http" not in index  # nothing to fetch at view time
    for name in charts:
        assert f'src="charts/{name}"' in index
