import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import rlhf_recipes.stages.methods  # noqa: F401  (registers the methods: tests load recipes through config.loader)

from .helpers import PROMPTS, REPO, save_preferences, scored_pair


@pytest.fixture(scope="session", autouse=True)
def session_store(tmp_path_factory) -> Path:
    """The stage store of the session's shared fixtures (never the user's cache)."""
    store = tmp_path_factory.mktemp("session-store")
    os.environ["RLHF_RECIPES_STORE"] = str(store)
    return store


@pytest.fixture(autouse=True)
def store(tmp_path_factory, monkeypatch, session_store) -> Path:
    """Each test its own, empty stage store: a stage one test built is never linked by another."""
    path = tmp_path_factory.mktemp("store")
    monkeypatch.setenv("RLHF_RECIPES_STORE", str(path))
    return path


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


@pytest.fixture(scope="session")
def preferences_dir(tmp_path_factory):
    """The preferences stage's output: two labeled pairs for each of PROMPTS."""
    rows = [
        scored_pair(p, c, r)
        for p in PROMPTS
        for c, r in ((" was great and lovely .", " was awful ."), (" was nice .", " was rude and dirty ."))
    ]
    out = tmp_path_factory.mktemp("preferences")
    save_preferences(out, rows)
    return out


@pytest.fixture(scope="session")
def prompts_dir(tmp_path_factory):
    """The prompts stage's output: PROMPTS to train on, two held out."""
    import json

    out = tmp_path_factory.mktemp("prompts")
    for name, rows in (("train", PROMPTS), ("heldout", PROMPTS[:2])):
        (out / f"{name}.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in rows))
    return out


@pytest.fixture(scope="session")
def reward_dir(tiny_model_dir, tmp_path_factory):
    """An (untrained, seeded) reward model in the policy's tokenizer: enough for PPO to run against."""
    import torch

    from rlhf_recipes.models.loading import Loading, load_reward_model, load_tokenizer

    out = tmp_path_factory.mktemp("reward")
    tokenizer = load_tokenizer(str(tiny_model_dir))
    torch.manual_seed(0)
    load_reward_model(str(tiny_model_dir), tokenizer.pad_token_id, Loading()).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def pytest_collection_modifyitems(config, items):
    """Tests marked ppo need TRL's PPO: skipped, saying what to install, where the installed TRL has none."""
    from rlhf_recipes.run.preflight import module_provides

    if module_provides("trl.experimental.ppo", "PPOTrainer"):
        return
    skip = pytest.mark.skip(reason="needs PPO, which the installed TRL does not have: pip install -e '.[ppo,test]'")
    for item in items:
        if item.get_closest_marker("ppo"):
            item.add_marker(skip)
