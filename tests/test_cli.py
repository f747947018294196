"""The command line: exit codes, messages without tracebacks, nothing written on bad input."""

import subprocess
import sys

import pytest

from .helpers import REPO


def rlhf(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "rlhf_recipes", *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.ppo
def test_validate_accepts_the_smoke_recipe():
    result = rlhf("validate", "recipes/smoke.yaml")
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stderr and "  ppo  " in result.stderr and "  dpo  " in result.stderr


def test_bad_recipe_exits_2_with_every_problem_and_no_traceback(tmp_path):
    out = tmp_path / "run"
    result = rlhf("run", "recipes/smoke.yaml", "ppo.kl_cof=1", "seed=x", "--output-dir", str(out))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "ppo.kl_cof: unknown key" in result.stderr and "seed: got 'x'" in result.stderr
    assert not out.exists()


def test_missing_and_malformed_recipe_files_exit_2(tmp_path):
    assert rlhf("validate", str(tmp_path / "nope.yaml")).returncode == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [\n")
    result = rlhf("validate", str(bad))
    assert result.returncode == 2 and "malformed YAML" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.ppo
def test_a_non_empty_output_directory_is_refused_and_left_alone(tmp_path):
    keep = tmp_path / "keep.txt"
    keep.write_text("precious")
    result = rlhf("run", "recipes/smoke.yaml", "--output-dir", str(tmp_path))
    assert result.returncode == 2 and "already exists, is not empty and holds no run" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"] and keep.read_text() == "precious"


@pytest.mark.ppo
def test_an_output_path_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("")
    result = rlhf("run", "recipes/smoke.yaml", "--output-dir", str(target))
    assert result.returncode == 2 and "is a file" in result.stderr


def test_help_is_fast_because_heavy_imports_wait():
    result = subprocess.run(
        [sys.executable, "-c", "import sys, rlhf_recipes.cli; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "False"
