"""A method is declared once: one module (its section, its stage, its TRL trainer) and one registration. A toy
method from a temporary module, registered by name, gets a recipe section, variants, a place in the docs, and
trains and is evaluated and reported by the unchanged pipeline on the tiny model."""

import textwrap

import pytest

from rlhf_recipes.config import methods as registry
from rlhf_recipes.config.docs import render
from rlhf_recipes.config.loader import load_recipe
from rlhf_recipes.run.pipeline import plan, run_recipe

from .helpers import REPO
from .test_bad_input import QUICK

TOY = '''
"""Chosen-only SFT: fine-tune on the chosen response of each labeled pair (a baseline the tool does not ship)."""

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from rlhf_recipes.config.methods import OfflineMethod
from rlhf_recipes.config.schema import Compute
from rlhf_recipes.models.loading import Loading, Tuning
from rlhf_recipes.runtime.stage import stage
from rlhf_recipes.training.data import train_pairs
from rlhf_recipes.training.installed import trainer_class
from rlhf_recipes.training.trainer import final_loss, fit, load_policy_and_reference, offline_arguments
from rlhf_recipes.training.trainer import save_trained_policy


class Toy(OfflineMethod):
    """SFT on the chosen responses."""

    method: Literal["toy"] = Field("toy", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "chosen-only SFT"
    SECTION: ClassVar[str] = "Chosen-only SFT on the labeled pairs; omit to skip."
    TRAINER: ClassVar[str] = "trl:SFTTrainer"
    REFERENCE: ClassVar[bool] = False
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (("loss", "SFT loss on chosen"),)

    def describe(self) -> str:
        return f"{self.epochs:g} epoch(s)"


@stage(version=1)
def toy(*, settings: Toy, loading: Loading, tuning: Tuning, compute: Compute, policy: Path | str,
        preferences: Path, seed: int, out_dir: Path) -> dict:
    from trl import SFTConfig

    SFTTrainer = trainer_class(Toy.TRAINER)
    tokenizer, network, _, _ = load_policy_and_reference(policy, loading, tuning, compute, reference=False)
    rows = train_pairs(preferences).rename_column("chosen", "completion").remove_columns("rejected")
    args = SFTConfig(**offline_arguments(settings, compute, out_dir, seed), completion_only_loss=True)
    trainer = SFTTrainer(model=network, args=args, train_dataset=rows, processing_class=tokenizer)
    history = fit(trainer, stage="toy", out_dir=out_dir, learning_rate=settings.learning_rate)
    save_trained_policy(trainer, network.eval(), tokenizer, out_dir, str(policy), loading, tuning)
    return {"pairs": len(rows), "steps": trainer.state.global_step, "final_loss": final_loss(history)}
'''


@pytest.fixture
def toy_registered(tmp_path, monkeypatch):
    """The toy method's module on the path and registered, for this test only."""
    (tmp_path / "toy_method.py").write_text(textwrap.dedent(TOY))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_REGISTERED", dict(registry._REGISTERED))
    registry.register_methods("toy_method")
    yield
    import sys

    sys.modules.pop("toy_method", None)


def test_a_registered_method_is_a_section_a_variant_and_documented(toy_registered, in_repo):
    recipe = load_recipe(REPO / "recipes/smoke.yaml", ["toy={epochs: 1}", "variants={toy_b: {method: toy, epochs: 2}}"])
    assert {"toy", "toy_b"} <= set(recipe.methods()) and recipe.methods()["toy_b"].epochs == 2
    assert {"preferences"} == type(recipe.toy).READS, "what it reads is its stage's parameters"
    assert "## `toy` — also `variants.<name>` with `method: toy`" in render()
    with pytest.raises(Exception, match="toy"):
        load_recipe(REPO / "recipes/smoke.yaml", ["variants={toy: {method: dpo}}"])  # its name is taken


def test_a_toy_method_trains_and_is_reported_by_the_unchanged_pipeline(toy_registered, in_repo, tmp_path):
    overrides = [*QUICK, "dpo=null", "toy={epochs: 1, learning_rate: 1.0e-3, batch_size: 8, max_length_tokens: 48}"]
    recipe = load_recipe(REPO / "recipes/smoke.yaml", overrides)
    assert [step.name for step in plan(recipe, tmp_path / "run")][-2:] == ["toy", "evaluation"]
    metrics = run_recipe(recipe, tmp_path / "run")
    assert "toy" in metrics["methods"] and metrics["costs"]["toy"]["optimizer_steps"] > 0
    assert "toy" in metrics["policies"] and "toy" in (tmp_path / "run" / "report.md").read_text()
