"""``sweep --cross-eval`` without training: the plan's targets and skipped pairs, the flag kept in
sweep.json, progress in --status, and a worker that evaluates only what is not finished."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from s3prl_emo.cli import main
from s3prl_emo.errors import InvalidInputError
from s3prl_emo.sweep import cross, plan, worker
from s3prl_emo.sweep.state import summary, sweep_states
from s3prl_emo.sweep.worker import STATE_FILE

A = ["angry", "sad", "neutral", "happy", "fear"]
B = ["angry", "happy", "sad", "neutral", "surprise"]
C = ["angry", "surprise", "disgust"]


def _spec(upstream, condition, fold=1) -> plan.RunSpec:
    return plan.RunSpec(upstream, None, condition, f"/c/{condition}.yaml", fold, {}, f"/data/{condition}")


def test_targets_are_the_own_condition_then_the_others_of_the_same_upstream():
    runs = [_spec("fbank", "A"), _spec("fbank", "B"), _spec("fbank", "C"), _spec("wavlm", "A"), _spec("fbank", "A", 2)]
    classes = {"A": A, "B": B, "C": C}
    targets, skipped = plan.cross_targets(runs[1], runs, classes)
    assert [(t.condition, t.config, t.root) for t in targets] == [
        ("B", "/c/B.yaml", "/data/B"),
        ("A", "/c/A.yaml", "/data/A"),
        ("C", "/c/C.yaml", "/data/C"),  # B and C share angry and surprise
    ]
    assert skipped == []
    targets, skipped = plan.cross_targets(runs[0], runs, classes)
    assert [t.condition for t in targets] == ["A", "B"]
    assert skipped == [f"A {A} -> C {C}: 1 shared class(es) ['angry'], at least 2 are needed; no cross-corpus cell"]
    assert [t.condition for t in plan.cross_targets(runs[3], runs, classes)[0]] == ["A"]  # wavlm trains on A only
    assert plan.cross_gaps(runs, classes) == [skipped[0], skipped[0].replace(f"A {A} -> C {C}", f"C {C} -> A {A}")]
    with pytest.raises(InvalidInputError, match="has no classes for condition C"):
        plan.cross_targets(runs[0], runs, {"A": A, "B": B})


def test_attributes_only_runs_have_no_cross_targets_and_are_none(repo_root):
    configs = repo_root / "downstream_configs"
    runs = [
        plan.RunSpec("fbank", None, "A", str(configs / "SYNTH.yaml"), 1, {}, "/data/A"),
        plan.RunSpec("fbank", None, "A_attr", str(configs / "SYNTH_attributes.yaml"), 1, {}, "/data/A"),
        plan.RunSpec("fbank", None, "A_both", str(configs / "SYNTH_both.yaml"), 1, {}, "/data/A"),
        plan.RunSpec("fbank", None, "A_grid", str(configs / "SYNTH.yaml"), 1, {"downstream_expert.task": "attributes"}),
        plan.RunSpec(
            "fbank", None, "A_o", str(configs / "SYNTH.yaml"), 1, overrides="config.downstream_expert.task=attributes"
        ),
    ]
    classes = {run.condition: A for run in runs}
    assert [plan.attributes_only(run) for run in runs] == [False, True, False, True, True]
    for attributes_run in (runs[1], runs[3], runs[4]):
        assert plan.cross_targets(attributes_run, runs, classes) == ([], [])
    assert [t.condition for t in plan.cross_targets(runs[0], runs, classes)[0]] == ["A", "A_both"]
    assert [t.condition for t in plan.cross_targets(runs[2], runs, classes)[0]] == ["A_both", "A"]
    assert plan.cross_gaps(runs, classes) == []


@pytest.fixture(scope="module")
def three(synth_root, tmp_path_factory, repo_root):
    """ROOT with SYNTH, SYNTH_B (4 classes shared with SYNTH) and SYNTH_C (1), and condition YAMLs for the two."""
    root = tmp_path_factory.mktemp("three")
    (root / "SYNTH").symlink_to(synth_root / "SYNTH")
    configs = {}
    for name, classes in (("SYNTH_B", B), ("SYNTH_C", C)):
        argv = ["synth", "--out", str(root), "--name", name, "--classes", ",".join(classes), "--seed", "7",
                "--utterances-per-speaker", "2"]  # fmt: skip
        assert main(argv) == 0
        configs[name] = root.parent / f"{name}.yaml"
        text = (repo_root / "downstream_configs" / "SYNTH.yaml").read_text()
        configs[name].write_text(text.replace("corpus: SYNTH\n", f"corpus: {name}\n"))
    return root, configs


def test_dry_run_warns_about_pairs_sharing_one_class_and_counts_the_evaluations(three, tmp_path, capsys, caplog):
    root, configs = three
    conditions = ",".join(["SYNTH", str(configs["SYNTH_B"]), str(configs["SYNTH_C"])])
    out = tmp_path / "results"
    argv = ["sweep", "--upstreams", "fbank", "--conditions", conditions, "--folds", "1", "--root", str(root),
            "--out", str(out), "--cross-eval", "--dry-run"]  # fmt: skip
    assert main(argv) == 0
    assert not out.exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "--cross-eval" in r.getMessage()]
    assert warnings == [
        f"--cross-eval: SYNTH {A} -> SYNTH_C {C}: 1 shared class(es) ['angry'], at least 2 are needed; "
        "no cross-corpus cell",
        f"--cross-eval: SYNTH_C {C} -> SYNTH {A}: 1 shared class(es) ['angry'], at least 2 are needed; "
        "no cross-corpus cell",
    ]
    assert capsys.readouterr().out.splitlines() == [
        "fbank/SYNTH/default/fold1  would run (to do: cross-eval 0 of 2 condition(s))",
        "fbank/SYNTH_B/default/fold1  would run (to do: cross-eval 0 of 3 condition(s))",
        "fbank/SYNTH_C/default/fold1  would run (to do: cross-eval 0 of 2 condition(s))",
        "done 0 / running 0 / failed 0 / to do 3 / cross-eval 0 of 7",
    ]


@pytest.fixture
def planned(three, tmp_path):
    """RESULTS of fbank x SYNTH, SYNTH_B x fold 1 with cross-eval (planned, nothing run)."""
    root, configs = three
    out = tmp_path / "results"
    runs = plan.build_plan(["fbank"], ["SYNTH", str(configs["SYNTH_B"])], root, folds=[1])
    plan.write_plan(out, runs, cross_eval=plan.condition_classes(runs))
    return out, runs


def test_the_plan_records_each_conditions_classes_and_a_rerun_keeps_them(planned):
    out, runs = planned
    assert plan.read_cross_eval(out) == {"SYNTH": tuple(A), "SYNTH_B": tuple(B)}
    plan.write_plan(out, runs)  # a later invocation without --cross-eval
    assert plan.read_cross_eval(out) == {"SYNTH": tuple(A), "SYNTH_B": tuple(B)}
    data = json.loads((out / plan.PLAN_FILE).read_text())
    data["cross_eval"] = {"classes": {"SYNTH": ["angry"]}}
    (out / plan.PLAN_FILE).write_text(json.dumps(data))
    with pytest.raises(InvalidInputError, match=r"sweep\.json: cross_eval\.classes\.SYNTH: \['angry'\] is not a list"):
        plan.read_cross_eval(out)


def _finish(folder, condition, text=None):
    path = folder / cross.CROSS_DIR / f"{condition}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text if text is not None else json.dumps({"condition": condition}))


def test_status_counts_cross_evaluations_and_a_run_is_done_when_all_are(planned, capsys):
    out, runs = planned
    first, _second = (plan.run_folder(out, r) for r in runs)
    (first / plan.RESULT_FILE).write_text("{}")
    _finish(first, "SYNTH")
    states = sweep_states(out)
    assert [(s.state, s.detail) for s in states] == [
        ("to do", "cross-eval 1 of 2 condition(s)"),
        ("to do", "cross-eval 0 of 2 condition(s)"),
    ]
    assert summary(states) == "done 0 / running 0 / failed 0 / to do 2 / cross-eval 1 of 4"
    _finish(first, "SYNTH_B", "not JSON")  # unreadable: computed again
    assert sweep_states(out)[0].state == "to do"
    _finish(first, "SYNTH_B")
    assert main(["sweep", "--status", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fbank/SYNTH/default/fold1    done     cross-eval 2 of 2 condition(s)" in printed
    assert printed.rstrip().endswith("done 1 / running 0 / failed 0 / to do 1 / cross-eval 2 of 4")


def test_the_worker_evaluates_only_unfinished_targets_of_a_trained_run(planned, monkeypatch, capsys):
    out, runs = planned
    folder = plan.run_folder(out, runs[0])
    (folder / plan.RESULT_FILE).write_text("{}")  # trained and evaluated: only cross-eval is left
    _finish(folder, "SYNTH")
    _finish(folder, "SYNTH_B", '{"condition": NaN}')  # unreadable
    calls = []

    def fake(run_dir, spec, target, device):
        calls.append((run_dir, spec.key, target.condition))
        _finish(run_dir, target.condition)

    monkeypatch.setattr(cross, "evaluate_target", fake)
    monkeypatch.setattr(worker, "run_one", lambda *a: pytest.fail("a trained run is not trained again"))
    assert worker.main([str(folder)]) == 0
    assert calls == [(folder, runs[0].key, "SYNTH_B")]
    assert not (folder / STATE_FILE).exists()
    assert worker.main([str(folder)]) == 0
    assert len(calls) == 1
    assert f"{folder}: already done" in capsys.readouterr().out


def test_a_linked_cross_folder_is_refused_never_written_through(planned, tmp_path):
    out, runs = planned
    folder = plan.run_folder(out, runs[0])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (folder / cross.CROSS_DIR).symlink_to(elsewhere)
    _finish(folder, "SYNTH")  # written through the link by hand: still not finished
    assert not cross.cross_finished(folder, "SYNTH")
    with pytest.raises(InvalidInputError, match="cross: is a symbolic link; remove it"):
        cross.cross_paths(folder, "SYNTH")


# -- end to end: a sweep over SYNTH and SYNTH_B with --cross-eval, then its report ----------------


@pytest.fixture(scope="module")
def swept(synth_root, repo_root, tmp_path_factory):
    """fbank x {SYNTH, SYNTH_B} x folds 1, 2 with --cross-eval (a few steps each), and its report."""
    from helpers.sweeps import SMALL

    base = tmp_path_factory.mktemp("swept")
    root = base / "data"
    root.mkdir()
    (root / "SYNTH").symlink_to(synth_root / "SYNTH")
    argv = ["synth", "--out", str(root), "--name", "SYNTH_B", "--classes", ",".join(B), "--seed", "7",
            "--utterances-per-speaker", "6"]  # fmt: skip
    assert main(argv) == 0
    config = base / "SYNTH_B.yaml"
    config.write_text(
        (repo_root / "downstream_configs" / "SYNTH.yaml").read_text().replace("corpus: SYNTH\n", "corpus: SYNTH_B\n")
    )
    out = base / "results"
    command = [
        sys.executable, "-m", "s3prl_emo.cli", "sweep", "--upstreams", "fbank", "--conditions", f"SYNTH,{config}",
        "--folds", "1,2", "--root", str(root), "--out", str(out), "-o", SMALL, "--cross-eval", "--jobs", "2",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    report = base / "report"
    assert main(["report", str(out), "--out", str(report), "--resamples", "200"]) == 0
    return out, report, command


def _restricted(folder, keep):
    probs, labels = (pd.read_csv(folder / f"{kind}.csv").set_index("FileName").sort_index()[keep].to_numpy(float)
                     for kind in ("probs", "labels"))  # fmt: skip
    return probs / probs.sum(1, keepdims=True), labels / labels.sum(1, keepdims=True)


def _f1(probs, labels):
    cut = np.float32(1 / probs.shape[1])
    return f1_score(labels.astype(np.float32) > cut, probs.astype(np.float32) > cut, average="macro", zero_division=0)


@pytest.mark.slow
def test_every_run_is_evaluated_on_both_conditions_its_own_reproducing_its_test_figures(swept):
    out, _, _ = swept
    for condition in ("SYNTH", "SYNTH_B"):
        for fold in (1, 2):
            folder = out / "fbank" / condition / "default" / f"fold{fold}"
            result = json.loads((folder / plan.RESULT_FILE).read_text())
            own = json.loads((folder / "cross" / f"{condition}.json").read_text())
            other = json.loads(
                (folder / "cross" / f"{'SYNTH_B' if condition == 'SYNTH' else 'SYNTH'}.json").read_text()
            )
            assert own["in_corpus"] is True
            assert own["folds"] == [fold]
            assert own["shared_classes"] == result["classes"]
            assert own["macro_f1"] == pytest.approx(result["test"]["macro_f1"], abs=1e-12)
            assert other["in_corpus"] is False
            assert other["folds"] == [1, 2, 3, 4, 5]
            assert other["num_utterances"] == 60
            assert sorted(other["shared_classes"]) == sorted(["angry", "sad", "neutral", "happy"])
            assert other["run"] == {"upstream": "fbank", "condition": condition, "fold": fold, "grid": {}, "seed": None}


@pytest.mark.slow
def test_the_report_matrix_has_both_off_diagonal_cells_and_the_diagonal_as_the_files_give(swept):
    out, report, _ = swept
    table = pd.read_csv(report / "cross_matrix.csv", keep_default_na=False)
    table = table.set_index(["train_condition", "test_condition"])
    assert sorted(table.index) == [
        ("SYNTH", "SYNTH"),
        ("SYNTH", "SYNTH_B"),
        ("SYNTH_B", "SYNTH"),
        ("SYNTH_B", "SYNTH_B"),
    ]
    for (train, test), row in table.iterrows():
        keep = row["classes"].split(";")
        assert len(keep) == 4
        assert row["runs"] == row["expected_runs"] == 2
        assert row["note"] == ""
        folders = [out / "fbank" / train / "default" / f"fold{k}" / "cross" / test for k in (1, 2)]
        scores = [_f1(*_restricted(folder, keep)) for folder in folders]
        assert row["mean"] == pytest.approx(np.mean(scores), abs=1e-5)  # the CSV holds 5 decimals
        assert row["std"] == pytest.approx(np.std(scores, ddof=1), abs=1e-5)
        assert 0 <= row["ci_low"] <= row["pooled"] <= row["ci_high"] <= 1
        if train != test:
            own = [_f1(*_restricted(f.parent / train, keep)) for f in folders]
            assert float(row["in_corpus_mean"]) == pytest.approx(np.mean(own), abs=1e-5)
    assert (report / "charts" / "cross_fbank_matrix.png").is_file()
    assert "## fbank" in (report / "cross_matrix.md").read_text()


@pytest.mark.slow
def test_a_worker_killed_before_its_last_cross_file_resumes_only_that(swept, capsys):
    out, _, command = swept
    folder = out / "fbank" / "SYNTH" / "default" / "fold2"
    lost = folder / "cross" / "SYNTH_B.json"
    before = json.loads(lost.read_text())
    lost.unlink()  # the folder stays, as a worker killed between the two writes leaves it
    kept = {p: p.stat().st_mtime_ns for p in out.glob("fbank/*/default/fold*/cross/*.json")}
    assert main(["sweep", "--status", "--out", str(out)]) == 0
    assert "fbank/SYNTH/default/fold2    to do    cross-eval 1 of 2 condition(s)" in capsys.readouterr().out
    done = subprocess.run([c for c in command if c != "--cross-eval"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 of 4 runs to do" in done.stderr
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # finished evaluations untouched
    again = json.loads(lost.read_text())
    assert again["macro_f1"] == pytest.approx(before["macro_f1"], abs=1e-12)
    assert "done 4 / running 0 / failed 0 / to do 0 / cross-eval 8 of 8" in done.stdout
