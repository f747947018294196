import json
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import REPO


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny Llama and tokenizer built from the smoke corpus, as the smoke recipe builds them."""
    from rlhf_recipes.config.schema import TinyModel
    from rlhf_recipes.models.tiny import build_tiny_model

    out = tmp_path_factory.mktemp("tiny")
    build_tiny_model(TinyModel(corpus=REPO / "data/smoke/demonstrations.jsonl"), out, seed=0)
    return out


@pytest.fixture
def in_repo(monkeypatch):
    """Run with the project root as working directory: recipes name their files relative to it."""
    monkeypatch.chdir(REPO)
    return REPO


@pytest.fixture(scope="session")
def tiny_settings(tiny_model_dir):
    """How the tiny model loads: float32, full weights."""
    from rlhf_recipes.models.loading import Loading

    return Loading()


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The smoke recipe, run once through the CLI: (run directory, metrics.json)."""
    run_dir = tmp_path_factory.mktemp("smoke") / "run"
    result = subprocess.run(
        [sys.executable, "-m", "rlhf_recipes", "run", "recipes/smoke.yaml", "--output-dir", str(run_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return run_dir, json.loads((run_dir / "metrics.json").read_text())
