from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny Llama and tokenizer built from the smoke corpus, as the smoke recipe builds them."""
    from rlhf_recipes.recipe import TinyModel
    from rlhf_recipes.tiny_model import build_tiny_model

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
    """The recipe's model section for the tiny model: float32, full weights."""
    from rlhf_recipes.recipe import Model

    return Model(name_or_path=str(tiny_model_dir))
