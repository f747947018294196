"""Cases of docs/bad-input.md's section on reports, run by tests/test_bad_input.py (each a function of
(tmp_path, monkeypatch) returning a CompletedProcess).

One quick run is trained per test session (finished_run, about 15 s); each case copies it to tmp_path/run
and damages the copy as a user could. The study cases use the synthetic study of tests/test_study_report.py
(no training)."""

import functools
import json
import shutil
from pathlib import Path

import yaml

from .test_study_report import make_study


@functools.cache
def finished_run() -> Path:
    """The quick smoke run (tests/test_bad_input.py's QUICK), trained once per session, removed at exit."""
    import atexit
    import tempfile

    from .test_bad_input import quick_run

    root = Path(tempfile.mkdtemp(prefix="rlhf-finished-run-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    result = quick_run(root)
    assert result.returncode == 0, result.stderr
    return root / "run"


def in_process(monkeypatch, *args):
    """tests/test_bad_input.py's in_process, imported when called: that module imports this one."""
    from .test_bad_input import in_process

    return in_process(monkeypatch, *args)


def damaged_run(tmp_path: Path, damage) -> Path:
    """A copy of the finished run at tmp_path/run, after damage(copy). Its stages are copied, not linked:
    damage to the copy never reaches the stage store the finished run links."""
    run = tmp_path / "run"
    shutil.copytree(finished_run(), run, symlinks=False)
    damage(run)
    return run


def compare_with_a_good_run(monkeypatch, damaged: Path):
    """`rlhf compare GOOD DAMAGED`: the good run is compared, the damaged one left out."""
    result = in_process(monkeypatch, "compare", finished_run(), damaged)
    assert f"| {finished_run()} (seed 0) | dpo |" in result.stderr, result.stderr
    return result


def edit_metrics(run: Path, edit) -> None:
    path = run / "metrics.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))


def without_heldout_accuracy(metrics: dict) -> dict:
    """metrics.json as an older version wrote it: another schema_version, no held-out accuracy."""
    del metrics["reward_model"]["heldout_accuracy"]
    return metrics | {"schema_version": 2}


def with_simpo_added(run: Path) -> None:
    """The recipe rerun with `simpo={}` and killed before its evaluation: recipe.resolved.yaml lists simpo,
    the evaluation (an earlier one) holds no responses of it."""
    path = run / "recipe.resolved.yaml"
    path.write_text(yaml.safe_dump(yaml.safe_load(path.read_text()) | {"simpo": {"method": "simpo"}}, sort_keys=False))


def policy_added_unfinished(tmp_path: Path, monkeypatch):
    """The report is rebuilt without simpo (and the rest as before), then says so."""
    run = damaged_run(tmp_path, with_simpo_added)
    (run / "metrics.json").unlink()  # opening the run for the rerun removed it
    result = in_process(monkeypatch, "report", run)
    assert json.loads((run / "metrics.json").read_text()) == json.loads((finished_run() / "metrics.json").read_text())
    return result


def policy_deleted(tmp_path: Path, monkeypatch):
    """Nothing is rebuilt: the report the run wrote, which has dpo's cost, stays as it was."""
    run = damaged_run(tmp_path, lambda run: shutil.rmtree(run / "dpo"))
    before = {name: (run / name).read_bytes() for name in ("metrics.json", "report.md", "report.html")}
    result = in_process(monkeypatch, "report", run)
    assert before == {name: (run / name).read_bytes() for name in before}
    return result


def study_without_plan(tmp_path: Path, monkeypatch):
    from rlhf_recipes.reporting.study_report import write_study_report

    study = make_study(tmp_path / "study")
    write_study_report(study)
    (study / "study.json").unlink()
    return compare_with_a_good_run(monkeypatch, study)


def study_with_a_failed_run(tmp_path: Path, monkeypatch):
    """The study's first run stopped before its report: its directory has no metrics.json."""
    study = make_study(tmp_path / "study")
    (study / "seed-0" / "metrics.json").unlink()
    result = in_process(monkeypatch, "report", study)
    report = (study / "report.md").read_text()
    assert "seed-1/report.md" in report and "seed-0/report.md" not in report and "left out" in report
    return result


CASES = {
    "compare-truncated-metrics": lambda t, m: compare_with_a_good_run(
        m, damaged_run(t, lambda run: (run / "metrics.json").write_text((run / "metrics.json").read_text()[:200]))
    ),
    "compare-metrics-not-a-dict": lambda t, m: compare_with_a_good_run(
        m, damaged_run(t, lambda run: (run / "metrics.json").write_text("[]"))
    ),
    "compare-older-schema": lambda t, m: compare_with_a_good_run(
        m, damaged_run(t, lambda run: edit_metrics(run, without_heldout_accuracy))
    ),
    "compare-study-without-plan": study_without_plan,
    "report-policy-added-unfinished": policy_added_unfinished,
    "report-policy-deleted": policy_deleted,
    "report-empty-generations": lambda t, m: in_process(
        m, "report", damaged_run(t, lambda run: (run / "evaluation" / "generations.jsonl").write_text(""))
    ),
    "report-study-run-failed": study_with_a_failed_run,
}
