"""The report's cross-corpus matrix on hand-made RESULTS folders (nothing is trained): cells, the
diagonal, in-corpus references and intervals recomputed from the written files by other code, and
hostile cross files named and skipped."""

import hashlib
import html
import json
import zlib

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from s3prl_emo.cli import main
from s3prl_emo.inference.cross_eval import cross_scores, match_classes
from s3prl_emo.report.cross_matrix import cross_matrix
from s3prl_emo.report.cross_tables import CSV_COLUMNS, cell_text
from s3prl_emo.report.results import load_sweep
from s3prl_emo.report.significance import condition_seed
from s3prl_emo.runtime.atomic import write_json_atomically
from s3prl_emo.stats import bootstrap_ci
from s3prl_emo.sweep.plan import RESULT_FILE, RunSpec, write_plan

CLASSES = {
    "A": ["angry", "sad", "neutral", "happy", "fear"],
    "B": ["angry", "happy", "sad", "neutral", "surprise"],
    "C": ["angry", "surprise", "disgust"],
}
FOLDS, PER_FOLD, R = (1, 2), 15, 60
POISON = 0.987  # a figure only a hostile file holds: it must never reach the report


def _spec(condition, fold, seed=None) -> RunSpec:
    return RunSpec("fbank", None, condition, f"{condition}.yaml", fold, {}, "/data", seed=seed)


def _corpus(condition):
    """All test utterances of a condition (fold k: rows PER_FOLD*(k-1) ...) and their soft labels."""
    rng = np.random.default_rng(zlib.crc32(condition.encode()))
    names = [f"{condition}_u{i:02d}.wav" for i in range(PER_FOLD * len(FOLDS))]
    return names, rng.dirichlet(np.ones(len(CLASSES[condition])) * 0.5, size=len(names))


def _write_evaluation(folder, spec, target, names, probs, labels, *, in_corpus) -> dict:
    """cross/<target>.json and cross/<target>/{probs,labels}.csv as the sweep's worker writes them."""
    match = match_classes(CLASSES[spec.condition], CLASSES[target])
    scores, probs_shared, labels_shared = cross_scores(probs, labels, match)
    out = folder / "cross" / target
    out.mkdir(parents=True)
    files = {}
    for kind, values in (("probs", probs_shared), ("labels", labels_shared)):
        table = pd.DataFrame(values, columns=list(match.shared))
        table.insert(0, "FileName", names)
        (out / f"{kind}.csv").write_text(table.to_csv(index=False))
        files[kind] = f"cross/{target}/{kind}.csv"
    sha = {f"{k}_sha256": hashlib.sha256((folder / v).read_bytes()).hexdigest() for k, v in files.items()}
    record = {
        "run": {k: spec.to_json()[k] for k in ("upstream", "condition", "fold", "grid", "seed")},
        "condition": target,
        "in_corpus": in_corpus,
        **match.to_json(),
        **scores,
        "predictions": {**files, **sha},
    }
    write_json_atomically(folder / "cross" / f"{target}.json", record)
    return record


def _build(results, *, seeds=(None,), cross_eval=True):
    specs = [_spec(c, k, s) for c in CLASSES for k in FOLDS for s in seeds]
    write_plan(results, specs, cross_eval=CLASSES if cross_eval else None)
    corpora = {c: _corpus(c) for c in CLASSES}
    for spec in specs:
        folder = results / spec.key
        classes = CLASSES[spec.condition]
        f1 = 0.3 + 0.1 * spec.fold
        write_json_atomically(
            folder / RESULT_FILE,
            {
                **spec.to_json(),
                "classes": classes,
                "dev": {"macro_f1": 0.5},
                "test": {"macro_f1": f1, **{f"f1/{c}": f1 for c in classes}},
                "layer_weights": None,
                "cooccurrence": np.eye(len(classes), dtype=int).tolist(),
            },
        )
        for target in CLASSES:
            if len(match_classes(classes, CLASSES[target], minimum=0).shared) < 2:
                continue
            names, labels = corpora[target]
            if target == spec.condition:  # the run's own test set: its fold's rows
                rows = slice(PER_FOLD * (spec.fold - 1), PER_FOLD * spec.fold)
                names, labels = names[rows], labels[rows]
            rng = np.random.default_rng([zlib.crc32(f"{spec.key}>{target}".encode())])
            probs = rng.dirichlet(np.ones(len(classes)), size=len(names))
            if target == spec.condition:
                probs = 0.6 * labels + 0.4 * probs
            _write_evaluation(folder, spec, target, names, probs, labels, in_corpus=target == spec.condition)
    return specs


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    _build(folder)
    return folder


# -- recomputation by other code ---------------------------------------------------------------


def _files(results, spec, target, keep):
    """Probabilities and soft labels of a written evaluation on ``keep``, renormalised, rows in file-name order."""
    folder = results / spec.key / "cross" / target
    probs, labels = (pd.read_csv(folder / f"{kind}.csv").set_index("FileName").sort_index()[keep] for kind in
                     ("probs", "labels"))  # fmt: skip
    probs, labels = probs.to_numpy(float), labels.to_numpy(float)
    return probs / probs.sum(1, keepdims=True), labels / labels.sum(1, keepdims=True)


def _f1(probs, labels):
    cut = np.float32(1 / probs.shape[1])
    return f1_score(labels.astype(np.float32) > cut, probs.astype(np.float32) > cut, average="macro", zero_division=0)


def test_cells_diagonal_and_references_equal_the_files_recomputed(results):
    sweep = load_sweep(results)
    matrix = cross_matrix(results, sweep, n_resamples=R)
    assert not sweep.problems
    assert matrix.conditions["fbank"] == ["A", "B", "C"]
    cells = {(t, s): c for (_, t, s), c in matrix.cells.items()}
    assert len(cells) == 9
    # fewer than two shared classes: skipped, both ways; B's common classes ({angry}) leave no diagonal
    assert cells[("A", "C")].skipped
    assert cells[("C", "A")].skipped
    assert cells[("A", "C")].figure is None
    assert "share 1 class(es) ['angry']" in cells[("A", "C")].skipped
    assert "with every column; no diagonal" in cells[("B", "B")].skipped
    four = ["angry", "sad", "neutral", "happy"]
    expected = {
        ("A", "B"): ("B", four, False),
        ("B", "A"): ("A", ["angry", "happy", "sad", "neutral"], False),
        ("B", "C"): ("C", ["angry", "surprise"], False),
        ("C", "B"): ("B", ["angry", "surprise"], False),
        ("A", "A"): ("A", four, True),  # the classes A shares with its only column, B
        ("C", "C"): ("C", ["angry", "surprise"], True),
    }
    for (train, test), (target, keep, diagonal) in expected.items():
        cell = cells[(train, test)]
        assert list(cell.figure.classes) == keep
        assert cell.diagonal is diagonal
        per_fold = [_f1(*_files(results, _spec(train, k), target, keep)) for k in FOLDS]
        assert cell.figure.mean == pytest.approx(np.mean(per_fold), abs=1e-12)
        assert cell.figure.std == pytest.approx(np.std(per_fold, ddof=1), abs=1e-12)
        assert (cell.figure.runs, cell.figure.complete) == (2, True)
        if not diagonal:  # the in-corpus reference: the row's own test sets on the same classes
            own = [_f1(*_files(results, _spec(train, k), train, keep)) for k in FOLDS]
            assert cell.in_corpus.mean == pytest.approx(np.mean(own), abs=1e-12)
    assert cells[("A", "A")].figure.mean == pytest.approx(cells[("A", "B")].in_corpus.mean, abs=1e-12)
    assert cells[("A", "A")].figure.mean != pytest.approx(sweep.cells[("fbank", "A")].mean)  # 4 classes, not 5


def test_intervals_resample_the_target_once_for_all_folds_and_pool_in_corpus_folds(results):
    matrix = cross_matrix(results, load_sweep(results), n_resamples=R)
    # A -> B: every fold's model on B's 30 utterances; the same draws for both folds, averaged
    folds = [_files(results, _spec("A", k), "B", ["angry", "sad", "neutral", "happy"]) for k in FOLDS]
    rng = np.random.default_rng(condition_seed("B"))
    n = len(folds[0][0])
    resampled = []
    for _ in range(R):
        idx = rng.integers(0, n, size=n)
        resampled.append(np.mean([_f1(p[idx], t[idx]) for p, t in folds]))
    interval = matrix.cells[("fbank", "A", "B")].figure.interval
    assert interval.value == pytest.approx(np.mean([_f1(p, t) for p, t in folds]), abs=1e-12)
    assert (interval.low, interval.high) == pytest.approx(tuple(np.quantile(resampled, [0.025, 0.975])), abs=1e-12)
    # A's diagonal: its folds' test sets concatenated (disjoint), as the leaderboard pools them
    own = [_files(results, _spec("A", k), "A", ["angry", "sad", "neutral", "happy"]) for k in FOLDS]
    probs, labels = np.concatenate([p for p, _ in own]), np.concatenate([t for _, t in own])
    diagonal = matrix.cells[("fbank", "A", "A")].figure.interval
    assert diagonal.value == pytest.approx(_f1(probs, labels), abs=1e-12)
    assert (diagonal.low, diagonal.high) == pytest.approx(
        bootstrap_ci(labels, probs, n_resamples=R, seed=condition_seed("A")), abs=1e-12
    )


def test_seeds_are_averaged_within_a_fold(tmp_path):
    results = tmp_path / "results"
    _build(results, seeds=(1, 2))
    cell = cross_matrix(results, load_sweep(results), n_resamples=R).cells[("fbank", "A", "B")]
    keep = ["angry", "sad", "neutral", "happy"]
    assert (cell.figure.runs, cell.figure.folds, cell.figure.seeds) == (4, 2, 2)
    per_fold = []
    for k in FOLDS:
        runs = [_files(results, _spec("A", k, s), "B", keep) for s in (1, 2)]
        per_fold.append(_f1(np.mean([p for p, _ in runs], axis=0), runs[0][1]))
    assert cell.figure.interval.value == pytest.approx(np.mean(per_fold), abs=1e-12)
    assert "(2 × 2 seeds)" in cell_text(cell)


def test_report_writes_the_matrix_as_csv_markdown_html_and_a_heatmap(results, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out), "--resamples", str(R)]) == 0
    table = pd.read_csv(out / "cross_matrix.csv", keep_default_na=False)
    assert list(table.columns) == list(CSV_COLUMNS)
    assert len(table) == 9
    row = table[(table.train_condition == "A") & (table.test_condition == "B")].iloc[0]
    assert (row["classes"], row["n_classes"], row["runs"], row["diagonal"]) == ("angry;sad;neutral;happy", 4, 2, False)
    assert 0 <= float(row["ci_low"]) <= float(row["pooled"]) <= float(row["ci_high"]) <= 1
    assert table[(table.train_condition == "A") & (table.test_condition == "C")].iloc[0]["note"].startswith("skipped")
    markdown = (out / "cross_matrix.md").read_text()
    assert "## fbank" in markdown
    assert "| train \\ test | A | B | C |" in markdown
    assert "- A → B: angry, sad, neutral, happy" in markdown
    page = (out / "index.html").read_text()
    assert "Cross-corpus matrix" in page
    assert 'src="charts/cross_fbank_matrix.png"' in page
    assert (out / "charts" / "cross_fbank_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_evaluations_and_files_are_said_not_hidden(results):
    (results / _spec("A", 2).key / "cross" / "B.json").unlink()  # not evaluated (yet)
    for name in ("probs.csv", "labels.csv"):
        (results / _spec("A", 1).key / "cross" / "A" / name).unlink()  # per-utterance files gone
    sweep = load_sweep(results)
    cells = cross_matrix(results, sweep, n_resamples=R).cells
    cross = cells[("fbank", "A", "B")].figure
    assert (cross.runs, cross.complete, cross.interval) == (1, False, None)
    assert cross.note == "1 of 2 runs have no usable evaluation on it"
    assert "incomplete: 1 of 2 runs" in cell_text(cells[("fbank", "A", "B")])
    diagonal = cells[("fbank", "A", "A")].figure
    assert diagonal.runs == 1
    assert "own test set" in diagonal.note
    assert not sweep.problems  # absent files are no problem, only missing figures


def test_a_sweep_without_cross_eval_has_no_matrix(tmp_path):
    results = tmp_path / "results"
    _build(results, cross_eval=False)
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out), "--resamples", "10"]) == 0
    assert not (out / "cross_matrix.csv").exists()
    assert "Cross-corpus" not in (out / "index.html").read_text()


# -- hostile cross files -----------------------------------------------------------------------


def _edit(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("nan", "macro_f1: nan is not a finite number in [0, 1]"),
        ("string", "B.json: scores.macro_f1: '0.5' is not a number"),
        ("in_corpus", "in_corpus 'yes' is not true or false"),
        ("classes", "shared_classes 'angry' is not a list of 2 or more distinct classes"),
        ("other run", "but the plan puts run fbank/A/default/fold2 here"),
        ("outside", "leads outside"),
        ("linked folder", "leads outside"),
        ("list", "a JSON list, not an evaluation object"),
    ],
)
def test_a_hostile_cross_file_is_named_and_skipped(results, tmp_path, caplog, case, message):
    folder = results / _spec("A", 2).key / "cross"
    path = folder / "B.json"
    if case == "nan":
        path.write_text(path.read_text().replace('"macro_f1": ', '"macro_f1": NaN, "was": ', 1))
    elif case == "string":
        _edit(path, macro_f1="0.5")
    elif case == "in_corpus":
        _edit(path, in_corpus="yes")
    elif case == "classes":
        _edit(path, shared_classes="angry")
    elif case == "other run":
        path.write_text((results / _spec("A", 1).key / "cross" / "B.json").read_text())
    elif case == "outside":
        outside = tmp_path / "outside.json"
        outside.write_text(path.read_text().replace('"macro_f1": ', f'"macro_f1": {POISON}, "was": ', 1))
        path.unlink()
        path.symlink_to(outside)
    elif case == "linked folder":
        elsewhere = tmp_path / "elsewhere"
        folder.rename(elsewhere)
        _edit(elsewhere / "B.json", macro_f1=POISON)
        folder.symlink_to(elsewhere)
    else:
        path.write_text("[1, 2]")
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out), "--resamples", "10"]) == 0
    problems = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and message in r.getMessage()]
    assert problems, caplog.text
    assert all(str(results / _spec("A", 2).key / "cross") in p for p in problems)
    table = pd.read_csv(out / "cross_matrix.csv", keep_default_na=False)
    row = table[(table.train_condition == "A") & (table.test_condition == "B")].iloc[0]
    assert row["runs"] == 1
    assert row["expected_runs"] == 2
    for name in ("cross_matrix.csv", "cross_matrix.md", "index.html"):
        assert str(POISON) not in (out / name).read_text()
    assert html.escape(message) in (out / "index.html").read_text()  # listed among the skipped inputs


def test_per_utterance_files_rewritten_after_the_run_lose_the_interval_not_the_figure(results, caplog):
    probs = results / _spec("A", 2).key / "cross" / "B" / "probs.csv"
    probs.write_text(probs.read_text().replace("A_", "A_", 1) + "\n")
    sweep = load_sweep(results)
    cell = cross_matrix(results, sweep, n_resamples=R).cells[("fbank", "A", "B")]
    assert cell.figure.runs == 2
    assert cell.figure.interval is None
    assert any("SHA-256 differs" in p and str(probs) in p for p in sweep.problems)
