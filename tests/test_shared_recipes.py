"""Recipes meant to share stages through the stage store hand those stages the same values: the SmolLM2
methods comparison and study train only their methods after the main job, and the comparison takes the main
job's PPO and DPO as they are (no model is loaded here)."""

import pytest

from rlhf_recipes.config.loader import load_recipe, study_runs
from rlhf_recipes.config.schema import Recipe
from rlhf_recipes.run.pipeline import plan
from rlhf_recipes.runtime.stage import fingerprints

from .helpers import REPO

SHARED = ["prompts", "model", "samples", "preferences", "reward_model"]


def data_fingerprints(recipe: Recipe, tmp_path, shared=SHARED) -> dict[str, str]:
    found = fingerprints(plan(recipe, tmp_path / recipe.name), tmp_path / recipe.name)
    return {name: found[name] for name in shared}


@pytest.mark.ppo
@pytest.mark.parametrize("name", ["smollm2_methods", "smollm2_study"])
def test_smollm2_recipes_share_the_main_jobs_data_and_reward_model(name, in_repo, tmp_path):
    main_job = data_fingerprints(load_recipe(REPO / "recipes/smollm2_sentiment.yaml"), tmp_path)
    recipe = load_recipe(REPO / f"recipes/{name}.yaml")
    runs = study_runs(recipe, recipe.model_dump(mode="json"))
    for run in runs or [None]:  # a study over training seeds: every run on the main job's data
        data = data_fingerprints(Recipe.model_validate(run.data) if run else recipe, tmp_path)
        assert data == main_job, (name, run and run.label)


@pytest.mark.ppo
def test_the_methods_comparison_links_the_main_jobs_ppo_and_dpo(in_repo, tmp_path):
    stages = [*SHARED, "ppo", "dpo"]
    main_job = data_fingerprints(load_recipe(REPO / "recipes/smollm2_sentiment.yaml"), tmp_path, stages)
    assert data_fingerprints(load_recipe(REPO / "recipes/smollm2_methods.yaml"), tmp_path, stages) == main_job
