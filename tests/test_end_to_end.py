"""The smoke recipe through the CLI on the tiny model: the policies must really improve on gold."""

import json
import re
import subprocess
import sys

import pytest

from .conftest import REPO


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("smoke") / "run"
    result = subprocess.run(
        [sys.executable, "-m", "rlhf_recipes", "run", "recipes/smoke.yaml", "--output-dir", str(run_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return run_dir, json.loads((run_dir / "metrics.json").read_text())


def test_ppo_and_dpo_beat_the_reference_on_held_out_gold(smoke_run):
    _, metrics = smoke_run
    policies = metrics["policies"]
    reference = policies["reference"]["gold_mean"]
    for name in ("ppo", "dpo"):
        assert policies[name]["gold_mean"] > reference + 0.15, (name, policies[name], reference)
        assert policies[name]["win_rate_vs_reference"] > 0.6
        assert policies[name]["kl_mean"] > 0
    assert policies["reference"]["kl_mean"] == 0.0 and policies["reference"]["win_rate_vs_reference"] == 0.5


def test_reward_model_generalises_to_held_out_prompts(smoke_run):
    _, metrics = smoke_run
    assert metrics["reward_model"]["heldout_accuracy"] >= 0.75


def test_metrics_json_contract(smoke_run):
    _, metrics = smoke_run
    assert metrics["schema_version"] == 1
    assert set(metrics["policies"]) == {"reference", "ppo", "dpo"}
    for policy in metrics["policies"].values():
        assert {"gold_mean", "reward_model_mean", "kl_mean", "win_rate_vs_reference", "mean_length_words", "n"} <= set(
            policy
        )
        assert policy["n"] == policy["wins"] + policy["ties"] + policy["losses"] > 0
    assert 0 <= metrics["reward_model"]["heldout_accuracy"] <= 1


def test_report_shows_the_numbers_of_metrics_json(smoke_run):
    run_dir, metrics = smoke_run
    report = (run_dir / "report.md").read_text()
    for name, policy in metrics["policies"].items():
        row = re.search(rf"^\| {name} \| ([-0-9.]+) ± [0-9.]+ \| ([-0-9.]+) \| ([-0-9.]+) \| ([0-9.]+) \|", report, re.M)
        assert row, name
        shown = [float(value) for value in row.groups()]
        expected = [policy[k] for k in ("gold_mean", "reward_model_mean", "kl_mean", "win_rate_vs_reference")]
        assert shown == pytest.approx(expected, abs=5e-4)
    assert f"**{metrics['reward_model']['heldout_accuracy']:.3f}**" in report


def test_run_directory_holds_every_artifact(smoke_run):
    from datasets import load_from_disk

    run_dir, _ = smoke_run
    for name in ("recipe.resolved.yaml", "versions.json", "run.json", "report.md", "eval/generations.jsonl"):
        assert (run_dir / name).is_file(), name
    for model in ("base_model", "sft", "reward_model", "ppo", "dpo"):
        assert (run_dir / model / "model.safetensors").is_file(), model
        assert not list((run_dir / model).glob("*.bin")), "weights are safetensors, nothing is pickled"
    pairs = load_from_disk(str(run_dir / "preferences/dataset"))
    assert set(pairs) == {"train", "heldout"}
    assert {"prompt", "chosen", "rejected"} <= set(pairs["train"].column_names)
    assert not set(pairs["train"]["prompt"]) & set(pairs["heldout"]["prompt"])
    assert not list(run_dir.glob(".*partial"))


def test_every_trained_parameter_changed(smoke_run):
    from safetensors.torch import load_file

    run_dir, _ = smoke_run
    for before, after in (("base_model", "sft"), ("sft", "ppo"), ("sft", "dpo")):
        old, new = load_file(run_dir / before / "model.safetensors"), load_file(run_dir / after / "model.safetensors")
        unchanged = [name for name in old if (old[name] == new[name]).all()]
        assert not unchanged, f"{after}: {unchanged}"
