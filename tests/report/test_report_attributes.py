"""The attribute table of the report, on hand-made result.json files and attribute predictions."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from s3prl_emo.cli import main
from s3prl_emo.errors import InvalidInputError
from s3prl_emo.metrics import attribute_scores, concordance_cc
from s3prl_emo.report.attributes import MEAN, analyse_attributes, attribute_board
from s3prl_emo.report.results import load_sweep
from s3prl_emo.runtime.atomic import write_json_atomically
from s3prl_emo.stats import bootstrap_ccc, paired_test_ccc, percentile_interval
from s3prl_emo.sweep.plan import RESULT_FILE, RunSpec, write_plan

ATTRIBUTES = ["EmoAct", "EmoVal", "EmoDom"]
CLASSES = ["angry", "sad", "neutral", "happy"]
PER_FOLD = 60


def _truth(fold: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(fold)
    names = [f"f{fold}_u{i:03d}.wav" for i in range(PER_FOLD)]
    return names, rng.uniform(1, 5, size=(PER_FOLD, len(ATTRIBUTES)))


def _write_run(results, spec: RunSpec, noise: float, *, both: bool, digest: bool = True) -> None:
    """A finished run: the expert's attribute files and the result.json the sweep would write."""
    names, truth = _truth(spec.fold)
    rng = np.random.default_rng([spec.fold, int(noise * 100), spec.seed or 0])
    predictions = truth + rng.normal(0, noise, size=truth.shape)
    exp = results / spec.key / "exp"
    exp.mkdir(parents=True)
    files = {}
    for kind, values in (("predictions", predictions), ("truth", truth)):
        table = pd.DataFrame(values, columns=ATTRIBUTES)
        table.insert(0, "FileName", names)
        name = f"test_fold{spec.fold}_attributes{'' if kind == 'predictions' else '_truth'}.csv"
        (exp / name).write_text(table.to_csv(index=False))
        files[kind] = f"exp/{name}"
        files[f"{kind}_sha256"] = hashlib.sha256((exp / name).read_bytes()).hexdigest()
    scores = attribute_scores(predictions, truth, ATTRIBUTES)
    classes = CLASSES if both else []
    categorical = {"macro_f1": 0.5, **{f"f1/{c}": 0.5 for c in CLASSES}} if both else {}
    result = {
        **spec.to_json(),
        "classes": classes,
        "dev": {**scores, **categorical, "loss_attributes": 0.3},
        "test": {**scores, **categorical, "task": "both" if both else "attributes", "attributes": ATTRIBUTES},
        "layer_weights": None,
    }
    if both:
        result["cooccurrence"] = np.eye(len(CLASSES), dtype=int).tolist()
    if digest:
        result["attribute_predictions"] = files
    write_json_atomically(results / spec.key / RESULT_FILE, result)


@pytest.fixture
def results(tmp_path):
    """Two upstreams x IEMOCAP_attributes (attribute-only) and IEMOCAP_both, 2 folds x 2 seeds;
    wavlm predicts with less noise than fbank."""
    out = tmp_path / "results"
    specs = [
        RunSpec(upstream, None, condition, f"{condition}.yaml", fold, {}, "/data", seed=seed)
        for upstream in ("wavlm", "fbank")
        for condition in ("IEMOCAP_attributes", "IEMOCAP_both")
        for fold in (1, 2)
        for seed in (1, 2)
    ]
    write_plan(out, specs)
    for spec in specs:
        _write_run(out, spec, 0.3 if spec.upstream == "wavlm" else 1.5, both=spec.condition.endswith("both"))
    return out


def test_attribute_only_runs_leave_the_macro_f1_leaderboard_and_fill_the_ccc_table(results):
    sweep = load_sweep(results)
    assert sweep.problems == []
    assert sweep.conditions == ["IEMOCAP_both"]  # attribute-only conditions have no macro-F1
    assert sweep.attribute_conditions == ["IEMOCAP_attributes", "IEMOCAP_both"]
    cell = sweep.attribute_cells[("wavlm", "IEMOCAP_attributes")]
    assert (cell.runs, cell.folds, cell.complete) == (4, 2, True)
    pooled = cell.pooled
    assert pooled.truth.shape == (2 * PER_FOLD, 3)
    assert (pooled.folds, pooled.seeds) == (2, 2)
    analysis = analyse_attributes(sweep.attribute_cells, sweep.upstreams, sweep.attribute_conditions, n_resamples=200)
    interval = analysis.intervals[("wavlm", "IEMOCAP_attributes")]
    expected = concordance_cc(pooled.predictions.T, pooled.truth.T)
    assert interval["EmoVal"].value == pytest.approx(expected[1])
    assert interval[MEAN].value == pytest.approx(expected.mean())
    seeded = bootstrap_ccc(pooled.truth, pooled.predictions, n_resamples=200, seed=_seed("IEMOCAP_attributes"))
    assert (interval[MEAN].low, interval[MEAN].high) == pytest.approx(percentile_interval(seeded.mean(axis=1)))
    assert interval[MEAN].low < interval[MEAN].value < interval[MEAN].high
    assert analysis.best == {"IEMOCAP_attributes": "wavlm", "IEMOCAP_both": "wavlm"}
    assert analysis.tied[("fbank", "IEMOCAP_attributes")] is False
    board = attribute_board(sweep, analysis).set_index(["condition", "upstream"])
    assert board.loc[("fbank", "IEMOCAP_both")[::-1], "EmoAct mean"] == pytest.approx(
        cell_mean(sweep, "fbank", "IEMOCAP_both", "ccc/EmoAct")
    )


def _seed(condition: str) -> int:
    from s3prl_emo.report.significance import condition_seed

    return condition_seed(condition)


def cell_mean(sweep, upstream, condition, key):
    return float(np.mean([r["test"][key] for r in sweep.attribute_cells[(upstream, condition)].results]))


def test_paired_test_of_mean_ccc_finds_the_better_system_and_not_a_copy():
    rng = np.random.default_rng(3)
    truth = rng.uniform(1, 5, size=(150, 3))
    good = truth + rng.normal(0, 0.3, size=truth.shape)
    bad = truth + rng.normal(0, 2.0, size=truth.shape)
    assert paired_test_ccc(truth, good, bad, n_resamples=200) < 0.01
    assert paired_test_ccc(truth, good, good.copy(), n_resamples=200) == 1.0
    with pytest.raises(InvalidInputError, match="paired_test_ccc: predictions"):
        paired_test_ccc(truth, good[:, :2], good, n_resamples=10)


def test_report_writes_the_ccc_table_escaped(results, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out), "--resamples", "100"]) == 0
    markdown = (out / "attributes.md").read_text()
    assert "| IEMOCAP\\_attributes | fbank |" in markdown or "| IEMOCAP_attributes | fbank |" in markdown
    assert "mean CCC" in markdown
    assert "pooled" in markdown
    board = pd.read_csv(out / "attributes.csv")
    assert len(board) == 4
    assert set(board["tied_with_best"]) == {True, False}
    tests = pd.read_csv(out / "attributes_significance.csv")
    assert list(tests["upstream"]) == ["fbank", "fbank"]
    assert (tests["p_holm"] < 0.05).all()
    index = (out / "index.html").read_text()
    assert '<table id="attributes">' in index
    assert "IEMOCAP_both" in (out / "leaderboard.md").read_text()
    assert "IEMOCAP_attributes" not in (out / "leaderboard.md").read_text()


def test_a_categorical_sweep_has_no_attribute_table(tmp_path):
    out = tmp_path / "results"
    spec = RunSpec("fbank", None, "IEMOCAP", "IEMOCAP.yaml", 1, {}, "/data")
    write_plan(out, [spec])
    result = {
        **spec.to_json(),
        "classes": CLASSES,
        "dev": {"macro_f1": 0.5},
        "test": {"macro_f1": 0.4, **{f"f1/{c}": 0.4 for c in CLASSES}},
        "layer_weights": None,
        "cooccurrence": np.eye(4, dtype=int).tolist(),
    }
    write_json_atomically(out / spec.key / RESULT_FILE, result)
    sweep = load_sweep(out)
    assert sweep.attribute_cells == {}
    assert sweep.attribute_conditions == []
    report = tmp_path / "report"
    assert main(["report", str(out), "--out", str(report), "--resamples", "50"]) == 0
    assert not (report / "attributes.md").exists()
    assert "attributes" not in (report / "index.html").read_text()


def test_rewritten_or_foreign_attribute_predictions_give_no_interval(tmp_path):
    out = tmp_path / "results"
    specs = [RunSpec("fbank", None, "A<b>", "A.yaml", fold, {}, "/data") for fold in (1, 2)]
    write_plan(out, specs)
    _write_run(out, specs[0], 0.5, both=False)
    _write_run(out, specs[1], 0.5, both=False, digest=False)
    csv = out / specs[0].key / "exp" / "test_fold1_attributes.csv"
    csv.write_text(csv.read_text().replace("f1_u000.wav,", "f1_u000.wav,1", 1))  # rewritten after the run
    sweep = load_sweep(out)
    cell = sweep.attribute_cells[("fbank", "A<b>")]
    assert cell.pooled is None
    assert "SHA-256" in " ".join(sweep.problems)
    report = tmp_path / "report"
    assert main(["report", str(out), "--out", str(report), "--resamples", "20"]) == 0
    index = (report / "index.html").read_text()
    assert "A&lt;b&gt;" in index
    assert "A<b>" not in index
    assert "A&lt;b&gt;" in (report / "attributes.md").read_text()


def test_undigested_predictions_must_give_the_results_ccc(tmp_path):
    out = tmp_path / "results"
    spec = RunSpec("fbank", None, "C", "C.yaml", 1, {}, "/data")
    write_plan(out, [spec])
    _write_run(out, spec, 0.5, both=False, digest=False)
    path = out / spec.key / RESULT_FILE
    data = json.loads(path.read_text())
    data["test"]["ccc/EmoAct"] = 0.01
    path.write_text(json.dumps(data))
    sweep = load_sweep(out)
    assert sweep.attribute_cells[("fbank", "C")].pooled is None
    assert "not the predictions this result was computed from" in " ".join(sweep.problems)
