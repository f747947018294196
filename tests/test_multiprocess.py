"""Two CPU processes (accelerate launch, gloo) share the reward-model, DPO and evaluation stages of
the smoke recipe: the results are complete, and consistent with the one-process run."""

import json
import math
import shutil
import subprocess
import sys

import pytest
import yaml

from .helpers import REPO


def losses(run_dir, stage) -> list[float]:
    return [
        entry["loss"] for entry in json.loads((run_dir / stage / "log_history.json").read_text()) if "loss" in entry
    ]


@pytest.mark.ppo
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
    assert result.stderr.count("dpo built") == 1, "one process speaks"
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


@pytest.mark.slow  # about 70 s: a one- and a two-process run; the test above keeps 2 processes in the default suite
def test_an_online_and_an_offline_method_on_two_processes(smoke_run, tmp_path):
    """GRPO (each process samples and scores its share of every batch) and KTO (each process takes half of
    every batch) train as two processes from the one-process run's inputs; KTO's losses follow one
    process's step by step, GRPO takes the same steps, and both policies are evaluated once."""
    single, _ = smoke_run
    grpo = "{epochs: 0.25, prompts_per_step: 8, generations_per_prompt: 2, learning_rate: 3.0e-4, max_new_tokens: 16}"
    kto = "{epochs: 0.25, batch_size: 16, learning_rate: 3.0e-4, max_length_tokens: 64}"
    methods = ["ppo=null", "dpo=null", "evaluation.best_of_n=[]", f"grpo={grpo}", f"kto={kto}"]
    runs = {}
    for processes in (1, 2):
        run_dir = runs[processes] = tmp_path / f"processes-{processes}"
        run_dir.mkdir()
        for stage in ("prompts", "model", "sft", "samples", "preferences", "reward_model"):  # reused by fingerprint
            shutil.copytree(single / stage, run_dir / stage)
        shutil.copy(single / "run.json", run_dir / "run.json")
        launch = ["--launcher", "accelerate", "--num-processes", "2"] if processes == 2 else []
        command = [sys.executable, "-m", "rlhf_recipes", "run", "recipes/smoke.yaml", *methods, *launch]
        result = subprocess.run([*command, "--output-dir", str(run_dir)], cwd=REPO, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("grpo built") == 1 and result.stderr.count("kto built") == 1, "one process speaks"
    run = json.loads((runs[2] / "run.json").read_text())
    assert run["processes"] == 2 and run["stages"]["reward_model"]["reused"]
    metrics = json.loads((runs[2] / "metrics.json").read_text())
    assert set(metrics["policies"]) == {"reference", "grpo", "kto"}

    def steps(run_dir):
        return json.loads((run_dir / "grpo" / "stage.json").read_text())["summary"]["steps"]

    assert steps(runs[2]) == steps(runs[1]), "two processes take the steps one process takes"
    one, two = losses(runs[1], "kto"), losses(runs[2], "kto")
    assert len(one) == len(two) and max(abs(a - b) for a, b in zip(one[:5], two[:5], strict=True)) < 1e-3
