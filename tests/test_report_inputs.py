"""`rlhf report` and `rlhf compare` read defensively (reporting/run_files.py): damaged files are named with the
fix, a failed report leaves the previous one whole, and a study or comparison reports the runs that are
fine. The damaged runs of docs/bad-input.md are tests/bad_input_reports.py; these are the finer points."""

import json
import shutil

import pytest

from rlhf_recipes.errors import RecipeError
from rlhf_recipes.reporting import blocks
from rlhf_recipes.reporting import report as report_module
from rlhf_recipes.reporting.compare import compare_readable, compare_text
from rlhf_recipes.reporting.run_files import read_json, read_jsonl
from rlhf_recipes.reporting.study_report import write_study_report

from .bad_input_reports import finished_run
from .test_study_report import make_study


def test_a_line_cut_short_is_named_with_its_line_and_the_stage_that_rebuilds_it(tmp_path):
    run = tmp_path / "run"
    (run / "evaluation").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    path = run / "evaluation" / "generations.jsonl"
    path.write_text('{"policy": "reference", "response": "a\u2028b"}\n{"policy": "dp')
    with pytest.raises(RecipeError, match=r"generations.jsonl, line 2: not a JSON object.*--force evaluation"):
        read_jsonl(path)
    path.write_text('{"policy": "reference", "response": "a\u2028b"}\n')
    assert read_jsonl(path) == [{"policy": "reference", "response": "a\u2028b"}], "only a newline ends a row"


def test_an_empty_or_foreign_json_file_is_named(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("")
    with pytest.raises(RecipeError, match=r"metrics.json: empty .* `rlhf report .*` rebuilds it"):
        read_json(path)
    path.write_text('"text"')
    with pytest.raises(RecipeError, match="holds a JSON string, not the object"):
        read_json(path)
    assert read_json(tmp_path / "nowhere.json", []) == [], "an optional file that is not there"


def test_a_report_that_fails_while_rendering_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(finished_run(), run, symlinks=True)
    before = {path.relative_to(run): path.read_bytes() for path in run.rglob("*") if path.is_file()}

    def fails(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(blocks, "render_html", fails)
    with pytest.raises(OSError):
        report_module.write_report(run)
    after = {path.relative_to(run): path.read_bytes() for path in run.rglob("*") if path.is_file()}
    assert after == before, "metrics.json, report.md and plots/ are as they were, and nothing partial is left"


def test_a_study_and_a_comparison_cover_the_runs_that_finished(tmp_path):
    study = make_study(tmp_path / "study")
    (study / "seed-2" / "metrics.json").unlink()
    metrics = json.loads((study / "seed-1" / "metrics.json").read_text())
    del metrics["policies"]["ppo_kl_coef_0.2"]
    (study / "seed-1" / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(RecipeError) as raised:
        write_study_report(study)
    assert [line.split(": ")[1].rsplit("/", 1)[-1] for line in raised.value.problems] == ["metrics.json", "seed-2"]
    assert "has no policy ppo_kl_coef_0.2, which the study trains" in raised.value.problems[0]
    written = json.loads((study / "metrics.json").read_text())
    assert written["runs"] == ["seed-0"] and written["conditions"]["all"]["replicates"] == ["seed 0"]
    text, left_out = compare_readable([study])
    assert f"{study}/seed-0" in text and f"{study}/seed-1" not in text and len(left_out) == 2
    with pytest.raises(RecipeError):
        compare_text([study])
    for seed in (0, 1):
        (study / f"seed-{seed}" / "metrics.json").unlink()
    with pytest.raises(RecipeError, match="no run of the study has finished"):
        write_study_report(study)
