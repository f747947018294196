"""Recipes for GPUs cannot run here, but they validate, and by our own memory estimate (models/memory.py,
checked by hand in test_memory.py) each stage fits the GPU its header names. The architectures are the
published configs of the models they name. An estimate is not a measurement: these tests catch a recipe
that grew past its GPU on paper, not an allocator's overhead."""

import pytest
from transformers import GPT2Config, Qwen2Config

from rlhf_recipes.config.loader import load_recipe
from rlhf_recipes.models.memory import GIB, count_parameters, stage_footprints

from .helpers import REPO

QWEN_1_5B = {
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
}
QWEN_7B = {
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "vocab_size": 152064,
    "tie_word_embeddings": False,
}


@pytest.mark.parametrize(
    "recipe, config, parameters_billions, gpu_gib",
    [
        ("qwen2.5-1.5b_sentiment_lora.yaml", lambda: Qwen2Config(**QWEN_1_5B), 1.54, 16),
        ("qwen2.5-7b_sentiment_qlora.yaml", lambda: Qwen2Config(**QWEN_7B), 7.62, 24),
        ("gpt2_imdb_dpo_paper.yaml", GPT2Config, 0.124, 16),  # GPT2Config's defaults are GPT-2 (124M)'s
    ],
)
@pytest.mark.ppo
def test_gpu_recipe_fits_its_gpu_by_our_estimate(recipe, config, parameters_billions, gpu_gib, in_repo):
    loaded = load_recipe(REPO / "recipes" / recipe)
    policy = count_parameters(config(), loaded.model.lora)
    reward = count_parameters(config(), loaded.reward_model.lora, for_reward=True)
    assert policy.total / 1e9 == pytest.approx(parameters_billions, abs=0.01)
    footprints = stage_footprints(loaded, policy, reward)
    worst = max(footprints, key=lambda stage: footprints[stage].total)
    assert footprints[worst].total < 0.9 * gpu_gib * GIB, f"{worst} needs {footprints[worst].total / GIB:.1f} GiB"


MULTI_GPU = {  # the commands docs/benchmarks.md gives for many GPUs, as overrides of the 1.5B recipe
    "ddp_4gpu.yaml": [],
    "deepspeed_zero2.yaml": [],
    "deepspeed_zero3.yaml": [
        "model.lora=null",
        "reward_model.lora=null",
        "ppo.eval_every_updates=null",
        "dpo.eval_every_steps=null",
    ],
    "fsdp.yaml": [
        "model.lora=null",
        "reward_model.lora=null",
        "ppo.eval_every_updates=null",
        "dpo.eval_every_steps=null",
    ],
}


@pytest.mark.ppo
@pytest.mark.parametrize("config", sorted(MULTI_GPU))
def test_multi_gpu_commands_validate_and_their_batches_split(config, in_repo):
    from accelerate.commands.config.config_args import load_config_from_file

    from rlhf_recipes.run.launch import check_batches_split, launch_command

    path = REPO / "recipes" / "accelerate" / config
    assert load_config_from_file(str(path)).num_processes in (4, 8), "accelerate itself reads the file"
    overrides = [*MULTI_GPU[config], f"compute.accelerate_config=recipes/accelerate/{config}"]
    loaded = load_recipe(REPO / "recipes" / "qwen2.5-1.5b_sentiment_lora.yaml", overrides)
    check_batches_split(loaded, load_config_from_file(str(path)).num_processes)
    command = launch_command(loaded, None, None)
    assert command[command.index("--config_file") + 1].endswith(config) and command[-3:] == [
        "-m",
        "rlhf_recipes",
        "run",
    ]
