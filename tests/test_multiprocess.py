"""Two CPU processes (accelerate launch, gloo) share the reward-model, DPO and evaluation stages of
the smoke recipe: the results are complete, and consistent with the one-process run."""

import json
import math
import shutil
import subprocess
import sys

import yaml

from .helpers import REPO


def losses(run_dir, stage) -> list[float]:
    return [
        entry["loss"] for entry in json.loads((run_dir / stage / "log_history.json").read_text()) if "loss" in entry
    ]


def test_reward_and_dpo_stages_on_two_processes_match_one_process(smoke_run, tmp_path):
    single, single_metrics = smoke_run
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for stage in ("prompts", "model", "sft", "samples", "preferences"):  # the inputs, reused by fingerprint
        shutil.copytree(single / stage, run_dir / stage)
    shutil.copy(single / "run.json", run_dir / "run.json")
    command = [
        sys.executable,
        "-m",
        "rlhf_recipes",
        "run",
        "recipes/smoke.yaml",
        "ppo=null",
        "--launcher",
        "accelerate",
        "--num-processes",
        "2",
        "--output-dir",
        str(run_dir),
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]

    run = json.loads((run_dir / "run.json").read_text())
    assert run["processes"] == 2
    assert {stage: info["reused"] for stage, info in run["stages"].items()} == {
        "prompts": True,
        "model": True,
        "sft": True,
        "samples": True,
        "preferences": True,
        "reward_model": False,
        "dpo": False,
        "evaluation": False,
    }
    assert result.stderr.count("dpo done") == 1, "one process speaks"
    assert not list(run_dir.glob(".*.partial")), "everything was published"
    for stage in ("reward_model", "dpo"):
        assert (run_dir / stage / "model.safetensors").is_file() and (run_dir / stage / "stage.json").is_file()

    # Each process takes half of every batch, so the optimizer sees the batches of the one-process run
    # and the losses agree step by step; they part slowly, as the gradients' float sums are added in
    # another order (and at an epoch's last, uneven batch, which accelerate pads).
    pairs = json.loads((single / "preferences" / "stats.json").read_text())["train"]["pairs"]
    recipe = yaml.safe_load((single / "recipe.resolved.yaml").read_text())
    for stage in ("reward_model", "dpo"):
        one, two = losses(single, stage), losses(run_dir, stage)
        assert len(one) == len(two)
        first_uneven = math.ceil(pairs / recipe[stage]["batch_size"])
        assert max(abs(a - b) for a, b in zip(one[: min(20, first_uneven - 1)], two, strict=False)) < 1e-3, stage
        assert abs(sum(one) - sum(two)) / len(one) < 0.05, stage

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["policies"]) == {"reference", "dpo"}
    assert abs(metrics["reward_model"]["heldout_accuracy"] - single_metrics["reward_model"]["heldout_accuracy"]) < 0.03
    # Sampling draws a seed per batch and the batches are dealt out round-robin: the reference's
    # held-out answers are those of the one-process run.
    assert metrics["policies"]["reference"]["gold_mean"] == single_metrics["policies"]["reference"]["gold_mean"]
    assert metrics["policies"]["reference"]["n"] == single_metrics["policies"]["reference"]["n"]
    assert abs(metrics["policies"]["dpo"]["gold_mean"] - single_metrics["policies"]["dpo"]["gold_mean"]) < 0.1
