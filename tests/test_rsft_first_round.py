"""Rejection sampling's round 0 selects among the samples stage's train answers when they are draws of the
same distribution, instead of sampling the initial policy again; otherwise it samples."""

import json

import pytest
from datasets import Dataset, load_from_disk

from rlhf_recipes.config.loader import load_recipe
from rlhf_recipes.run.pipeline import plan
from rlhf_recipes.stages.rsft import Rsft

from .helpers import PROMPTS, REPO, rlhf_run
from .test_methods import train

SMOKE_SAMPLES = ["samples.responses_per_prompt=4", "samples.max_new_tokens=24"]


def rsft_step(tmp_path, *overrides):
    recipe = load_recipe(REPO / "recipes/smoke.yaml", [*SMOKE_SAMPLES, *overrides])
    return next(step for step in plan(recipe, tmp_path) if step.name == "rsft")


@pytest.mark.ppo
def test_round_zero_reads_the_samples_stage_when_it_draws_the_same_distribution(tmp_path):
    step = rsft_step(tmp_path, "rsft={samples_per_prompt: 4, max_new_tokens: 24}")
    assert step.arguments["first_round"] == tmp_path / "samples"


@pytest.mark.parametrize(
    "rsft",
    [
        "{samples_per_prompt: 8, max_new_tokens: 24}",  # more answers than the stage drew
        "{samples_per_prompt: 4, max_new_tokens: 16}",  # shorter answers
        "{samples_per_prompt: 4, max_new_tokens: 24, temperature: 0.7}",
    ],
)
@pytest.mark.ppo
def test_round_zero_samples_anew_otherwise(tmp_path, rsft):
    assert rsft_step(tmp_path, f"rsft={rsft}").arguments["first_round"] is None


@pytest.mark.ppo
def test_round_zero_samples_anew_under_top_k(tmp_path):
    step = rsft_step(tmp_path, "samples.top_k=50", "rsft={samples_per_prompt: 4, max_new_tokens: 24}")
    assert step.arguments["first_round"] is None


def test_round_zero_selects_among_the_sampled_answers(tmp_path, tiny_model_dir, prompts_dir, reward_dir):
    drawn = {prompt: [f" answer {i} to {prompt}" for i in range(3)] for prompt in PROMPTS}
    rows = [
        {"split": split, "prompt_index": index, "prompt": prompt, "response": answer}
        for split in ("train", "heldout")
        for index, prompt in enumerate(PROMPTS)
        for answer in drawn[prompt]
    ]
    samples_dir = tmp_path / "samples"
    Dataset.from_list(rows).save_to_disk(str(samples_dir))
    section = Rsft(samples_per_prompt=2, rounds=2, epochs=1, learning_rate=1e-2, batch_size=4, max_new_tokens=6)
    inputs = {"policy": tiny_model_dir, "prompts": prompts_dir, "reward_model": reward_dir, "first_round": samples_dir}
    summary = train("rsft", tmp_path / "rsft", inputs, section=section)
    selected = [json.loads(line) for line in (tmp_path / "rsft" / "selected.jsonl").read_text().splitlines()]
    first = [row for row in selected if row["round"] == 0]
    assert [row["prompt"] for row in first] == PROMPTS
    assert all(row["response"] in drawn[row["prompt"]][:2] for row in first)  # only the first N of each prompt
    assert not any(row["response"].startswith(" answer") for row in selected if row["round"] == 1)
    assert summary["training_generations"] == 2 * len(PROMPTS)  # round 1's only
    assert summary["first_round_from_samples"]


def test_a_run_on_an_empty_store_selects_among_the_answers_it_sampled(tmp_path, in_repo):
    """End to end: the smoke recipe's samples stage feeds rsft's round 0 in the same run."""
    run_dir = tmp_path / "run"
    overrides = ["ppo=null", "dpo=null", "evaluation.best_of_n=[]", "rsft={samples_per_prompt: 4, max_new_tokens: 24}"]
    rlhf_run("recipes/smoke.yaml", run_dir, *overrides)
    assert json.loads((run_dir / "rsft" / "stage.json").read_text())["summary"]["first_round_from_samples"]
    sampled = {(row["prompt"], row["response"]) for row in load_from_disk(str(run_dir / "samples"))}
    selected = [json.loads(line) for line in (run_dir / "rsft" / "selected.jsonl").read_text().splitlines()]
    assert selected and all((row["prompt"], row["response"]) in sampled for row in selected)
