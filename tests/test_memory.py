"""The memory estimate against numbers computed by hand for a known tiny configuration."""

import pytest
from transformers import LlamaConfig

from rlhf_recipes.config.base import Lora
from rlhf_recipes.models.memory import NF4_BYTES, activation_bytes, count_parameters, model_footprint

CONFIG = {
    "vocab_size": 100,
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "tie_word_embeddings": True,
}


def test_parameter_counts_by_hand():
    """Embedding 100*8 = 800. A layer: q,k,v,o 4*8*8 = 256; gate, up 2*8*16 = 256; down 16*8 = 128;
    two norms 16: 656. Two layers 1312, final norm 8, tied head 0: total 2120; block linears 2*640 = 1280.
    LoRA r=2 on all linears: q,k,v,o 4*2*(8+8) = 128, gate, up 2*2*(8+16) = 96, down 2*(16+8) = 48:
    272 a layer, 544 in all. Only q and v: 2*2*(8+8) = 64 a layer, 128 in all."""
    counts = count_parameters(LlamaConfig(**CONFIG), Lora(rank=2))
    assert (counts.total, counts.block_linear, counts.lora) == (2120, 1280, 544)
    assert count_parameters(LlamaConfig(**CONFIG), Lora(rank=2, target_modules=["q_proj", "v_proj"])).lora == 128


def test_footprints_by_hand():
    """Full fp32: weights 2120*4 = 8480, gradients 8480, AdamW 2*8480.
    LoRA fp32: weights 8480 + 544*4 = 10656, gradients 544*4 = 2176, AdamW 4352.
    QLoRA: 1280 NF4 weights + 840 bf16 others + 544 bf16 adapters; gradients 544*2, AdamW 2*1088."""
    counts = count_parameters(LlamaConfig(**CONFIG), Lora(rank=2))
    full = model_footprint(counts, "float32", four_bit=False, lora=False, trained=True)
    assert (full.weights, full.gradients, full.optimizer) == (8480, 8480, 16960)
    lora = model_footprint(counts, "float32", four_bit=False, lora=True, trained=True)
    assert (lora.weights, lora.gradients, lora.optimizer) == (10656, 2176, 4352)
    qlora = model_footprint(counts, "bfloat16", four_bit=True, lora=True, trained=True)
    assert qlora.weights == pytest.approx(1280 * NF4_BYTES + 840 * 2 + 544 * 2)
    assert (qlora.gradients, qlora.optimizer) == (1088, 2176)
    frozen = model_footprint(counts, "bfloat16", four_bit=False, lora=False, trained=False)
    assert (frozen.weights, frozen.total) == (4240, 4240)


def test_nf4_bytes_per_parameter():
    """4 bits, plus an 8-bit absmax per 64 weights, plus a float32 scale per 256 blocks."""
    assert pytest.approx(0.5 + 1 / 64 + 4 / 16384) == NF4_BYTES


def test_activations_by_hand():
    """s=4, b=1, h=8, a=2: per layer 4*1*8*(34 + 5*2*4/8) = 32*39 = 1248; two layers 2496;
    logits 4*4*1*100 = 1600. With checkpointing: 2*4*1*8 = 64 a layer, 128 + 1600."""
    counts = count_parameters(LlamaConfig(**CONFIG), None)
    assert activation_bytes(counts, sequences=1, tokens=4, checkpointing=False) == 2496 + 1600
    assert activation_bytes(counts, sequences=1, tokens=4, checkpointing=True) == 128 + 1600
    assert activation_bytes(counts, sequences=1, tokens=4, checkpointing=True, logits=False) == 128


@pytest.mark.ppo
def test_validate_prints_the_plan_and_the_estimate(in_repo):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "rlhf_recipes", "validate", "recipes/smoke.yaml"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "| stage | weights" in result.stderr and "| ppo |" in result.stderr and "Stages:" in result.stderr
