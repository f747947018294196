"""Values that could only fail later are refused at validation, named as the user wrote them (the cases beside
docs/bad-input.md's "Values that could only fail later" rows)."""

import pytest

from rlhf_recipes.errors import RecipeError
from rlhf_recipes.run.preflight import checked_recipe
from rlhf_recipes.stages.grpo import Grpo
from rlhf_recipes.stages.ppo import Ppo
from rlhf_recipes.stages.rsft import Rsft

from .helpers import REPO


def problems(*overrides, recipe="recipes/smoke.yaml") -> str:
    with pytest.raises(RecipeError) as error:
        checked_recipe(REPO / recipe, list(overrides))
    return str(error.value)


@pytest.mark.ppo
def test_each_method_counts_its_step_in_train_prompts():
    """PPO's update answers rollouts_per_update prompts, an online method's step prompts_per_step, rsft's step
    trains on the best answers to batch_size prompts; the offline methods' steps take pairs, not prompts."""
    assert Ppo(rollouts_per_update=16, mini_batch_size=8).too_few_train_prompts("ppo.rollouts_per_update", 16) is None
    assert "this run has 15" in Ppo(rollouts_per_update=16, mini_batch_size=8).too_few_train_prompts("k", 15)
    assert "k=9: each optimizer step answers" in Grpo(prompts_per_step=9).too_few_train_prompts("k", 8)
    assert "best answers to that many" in Rsft(batch_size=9).too_few_train_prompts("k", 8)


def test_only_the_study_runs_with_too_few_train_prompts_are_named(in_repo):
    condition = "study={condition: {key: prompts.max_prompts, values: [30, 100]}}"  # 24 and 80 train prompts
    message = problems("ppo=null", "grpo={prompts_per_step: 32}", condition)
    assert "study runs max_prompts-30/seed-0: grpo.prompts_per_step=32" in message and "max_prompts-100" not in message


def test_your_own_pairs_are_counted_too(in_repo):
    message = problems("ppo=null", "grpo={prompts_per_step: 512}", recipe="recipes/smoke_own_pairs.yaml")
    assert "grpo.prompts_per_step=512: each optimizer step answers that many distinct train prompts" in message


@pytest.mark.ppo
def test_prompts_on_the_hub_are_not_read_at_validation(in_repo, monkeypatch):
    from rlhf_recipes.stages import prompts

    monkeypatch.setattr(prompts, "load_prompts", lambda config: pytest.fail("read a hub dataset at validation"))
    checked_recipe(REPO / "recipes/smoke.yaml", ["prompts.path=null", "prompts.hub_dataset=someone/prompts"])


def test_a_sweep_is_named_as_written(in_repo):
    assert "sweep.key: grpo.beta is a setting of a policy the recipe does not train" in problems(
        "sweep={key: grpo.beta, values: [0.1, 1]}"
    )
    assert "sweep.values: 1 and 1.0 are one grid point, the policy dpo_beta_1" in problems(
        "sweep={key: dpo.beta, values: [1, 1.0]}"
    )
    assert "sweep.values: 0.2 and 0.2 are one value here" in problems(
        "sweep={key: preferences.label_flip_prob, values: [0.2, 0.2]}"
    )


def test_a_condition_is_a_key_outside_the_methods_with_distinct_values(in_repo):
    condition = "study={condition: {key: variants.dpo_b.beta, values: [1, 2]}}"
    message = problems("variants={dpo_b: {method: dpo}}", condition)
    assert "study.condition.key: variants.dpo_b.beta is a setting of the policy dpo_b" in message
    assert "study: {grid: {dpo_b: {beta: [1, 2]}}}" in message
    assert "study.condition.values: 0 and 0.0 are one value here" in problems(
        "study={condition: {key: preferences.tie_margin, values: [0, 0.0]}}"
    )


@pytest.mark.ppo
def test_every_seed_is_below_2_to_the_32(in_repo):
    assert "study.seeds.1: got 4294967296; a seed must be below 2**32" in problems("study={seeds: [0, 4294967296]}")
    assert checked_recipe(REPO / "recipes/smoke.yaml", ["seed=4294967295"]).seed == 2**32 - 1


def test_no_number_is_infinite_or_nan(in_repo):
    message = problems("samples.temperature=.nan")
    assert "samples.temperature: got nan (float); input should be a finite number" in message
    assert "ppo.kl_coef: got inf (float)" in problems("ppo.kl_coef=1e999")


@pytest.mark.ppo
def test_one_message_for_a_loss_or_a_list_of_losses(in_repo):
    message = problems("dpo.loss_type=[sigmoid, sigmod]")
    assert message.count("dpo.loss_type") == 1 and "'sigmod' is not a loss of TRL 1.12's DPOTrainer" in message
    assert "did you mean sigmoid?" in message
    assert checked_recipe(REPO / "recipes/smoke.yaml", ["dpo.loss_type=[sigmoid, sft]"]).dpo.losses() == [
        "sigmoid",
        "sft",
    ]


def test_a_missing_tag_names_its_key_and_the_choices(in_repo):
    assert "labeler.kind: missing; a labeler needs kind: naming one of the kinds: sentiment" in problems(
        "labeler={target_words: 5}"
    )


def test_ppo_names_its_curve_key(in_repo):
    message = problems("ppo.eval_every_steps=2")
    assert "ppo.eval_every_steps: 'eval_every_steps' is not a PPO setting; PPO names it 'eval_every_updates'" in message
    assert "Fix: write ppo.eval_every_updates: 2" in message
