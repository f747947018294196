"""How much memory each stage needs: weights, gradients, optimizer state and (roughly) activations.

Counts come from the model's config, built on torch's meta device (no weights are loaded).
Bytes per parameter: float32 4, bfloat16/float16 2; 4-bit NF4 with double quantization
0.5 + 1/64 + 4/(64*256) (4 bits, an 8-bit absmax per block of 64, an fp32 scale per 256 blocks),
for the linear layers of the transformer blocks; embeddings and norms stay in the model dtype.
Trainable parameters carry a gradient and AdamW's two moments, each in the parameter's dtype.
Activations use Korthikanti et al. (2022): per layer s*b*h*(34 + 5*a*s/h) bytes in 16 bits,
or 2*s*b*h bytes with gradient checkpointing.
"""

import os
from dataclasses import dataclass

from ..config.base import Lora
from ..config.schema import Recipe
from .builtin import builtin_gguf_path
from .loading import Loading, device_for
from .tiny import llama_config

NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
GIB = 1024**3
PROMPT_TOKENS_ASSUMED = 128  # prompt length for PPO and evaluation, unknown before tokenizing


@dataclass
class Counts:
    """Parameter counts of one architecture."""

    total: int  # every parameter
    block_linear: int  # weights of nn.Linear layers inside transformer blocks (what 4-bit quantizes)
    lora: int  # parameters a LoRA adapter adds (0 without LoRA)
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int


@dataclass
class Footprint:
    """One model's share of a stage, in bytes."""

    weights: float
    gradients: float = 0.0
    optimizer: float = 0.0
    activations: float = 0.0

    def __add__(self, other: "Footprint") -> "Footprint":
        return Footprint(
            *(getattr(self, f) + getattr(other, f) for f in ("weights", "gradients", "optimizer", "activations"))
        )

    def __mul__(self, times: int) -> "Footprint":
        """`times` such models side by side (an ensemble's members)."""
        return Footprint(*(getattr(self, f) * times for f in ("weights", "gradients", "optimizer", "activations")))

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations


def count_parameters(config, lora: Lora | None, for_reward: bool = False) -> Counts:
    """Counts for a transformers config, from a model built on the meta device."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    auto = AutoModelForSequenceClassification if for_reward else AutoModelForCausalLM
    if for_reward:
        config.num_labels = 1
    with torch.device("meta"):
        model = auto.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    linears = {name: module for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    in_blocks = {name: m for name, m in linears.items() if ".layers." in name or ".h." in name}
    adapted = 0
    if lora is not None:
        targets = (
            in_blocks
            if lora.target_modules == "all-linear"
            else {n: m for n, m in in_blocks.items() if n.split(".")[-1] in lora.target_modules}
        )
        adapted = sum(lora.rank * (m.in_features + m.out_features) for m in targets.values())
    text = config.get_text_config()
    return Counts(
        total=total,
        block_linear=sum(m.weight.numel() for m in in_blocks.values()),
        lora=adapted,
        hidden=text.hidden_size,
        layers=text.num_hidden_layers,
        heads=text.num_attention_heads,
        kv_heads=getattr(text, "num_key_value_heads", None) or text.num_attention_heads,
        vocab=text.vocab_size,
    )


def model_footprint(
    counts: Counts, dtype: str, four_bit: bool, lora: bool, trained: bool, score_head: int = 0
) -> Footprint:
    """Weights of one model, plus gradients and AdamW state if `trained` (the LoRA parameters and a
    reward model's score head when `lora`, else all parameters)."""
    width = DTYPE_BYTES[dtype]
    if four_bit:
        weights = counts.block_linear * NF4_BYTES + (counts.total - counts.block_linear) * width
    else:
        weights = counts.total * width
    adapter_width = 2 if four_bit else 4  # peft keeps adapters in float32; TRL casts QLoRA adapters to bfloat16
    if lora:
        weights += counts.lora * adapter_width
    if not trained:
        return Footprint(weights)
    trainable_bytes = (counts.lora * adapter_width + score_head * width) if lora else counts.total * width
    return Footprint(weights, gradients=trainable_bytes, optimizer=2 * trainable_bytes)


def activation_bytes(counts: Counts, sequences: int, tokens: int, checkpointing: bool, logits: bool = True) -> float:
    """Training activations of `sequences` sequences of `tokens` tokens, in 16-bit (Korthikanti et al.),
    plus float32 logits over the vocabulary for a language model (a reward model has one output)."""
    s, b, h, a = tokens, sequences, counts.hidden, counts.heads
    per_layer = 2 * s * b * h if checkpointing else s * b * h * (34 + 5 * a * s / h)
    return counts.layers * per_layer + (4 * s * b * counts.vocab if logits else 0)


def kv_cache_bytes(counts: Counts, sequences: int, tokens: int, dtype: str) -> float:
    head_dim = counts.hidden // counts.heads
    return 2 * counts.layers * counts.kv_heads * head_dim * tokens * sequences * DTYPE_BYTES[dtype]


def stage_footprints(recipe: Recipe, policy: Counts, reward: Counts) -> dict[str, Footprint]:
    """Peak memory of each stage of `recipe`, by component."""
    m, r, ckpt = recipe.model, recipe.reward_model, recipe.compute.gradient_checkpointing
    members = r.ensemble.members if r.ensemble else 1
    m = m.model_copy(update={"dtype": Loading.of(m, device_for(recipe.compute, visible=False)).dtype})  # auto decided
    lora, rlora = m.lora is not None, r.lora is not None
    head = reward.hidden  # the score head: hidden -> 1
    frozen_policy = model_footprint(policy, m.dtype, m.load_in_4bit, False, trained=False)
    stages = {}
    if recipe.sft:
        stages["sft"] = model_footprint(policy, m.dtype, m.load_in_4bit, lora, trained=True) + Footprint(
            0, activations=activation_bytes(policy, recipe.sft.batch_size, recipe.sft.max_length_tokens, ckpt)
        )
    s = recipe.samples
    if recipe.preferences.dataset is None:  # your own pairs need no sampling
        stages["samples"] = frozen_policy + Footprint(
            0, activations=kv_cache_bytes(policy, s.batch_size, PROMPT_TOKENS_ASSUMED + s.max_new_tokens, m.dtype)
        )
    stages["reward_model"] = model_footprint(
        reward, m.dtype, r.load_in_4bit, rlora, trained=True, score_head=head
    ) + Footprint(0, activations=activation_bytes(reward, 2 * r.batch_size, r.max_length_tokens, ckpt, logits=False))
    for name, method in recipe.methods().items():
        sequences, tokens = method.memory_batch(PROMPT_TOKENS_ASSUMED)
        footprint = model_footprint(policy, m.dtype, m.load_in_4bit, lora, trained=True) + Footprint(
            0, activations=activation_bytes(policy, sequences, tokens, ckpt)
        )
        if method.REFERENCE and not lora:  # with LoRA the reference is the adapter disabled
            footprint += frozen_policy
        if "reward_model" in method.READS:  # every member of an ensemble is loaded
            footprint += model_footprint(reward, m.dtype, r.load_in_4bit, False, trained=False) * members
        if method.VALUE_MODEL:  # trained, started from the reward model, its activations beside the policy's
            footprint += model_footprint(reward, m.dtype, r.load_in_4bit, rlora, trained=True, score_head=head)
            footprint += Footprint(0, activations=activation_bytes(policy, sequences, tokens, ckpt))
        stages[name] = footprint
    e = recipe.evaluation
    stages["evaluation"] = (
        frozen_policy
        + (Footprint(0) if lora else frozen_policy)
        + model_footprint(reward, m.dtype, r.load_in_4bit, False, trained=False) * members
        + Footprint(
            0, activations=kv_cache_bytes(policy, e.batch_size, PROMPT_TOKENS_ASSUMED + e.max_new_tokens, m.dtype)
        )
    )
    return stages


def architecture_config(recipe: Recipe):
    """The transformers config of the recipe's model, without loading weights; None if it is unavailable
    offline (a hub model that is not in the local cache)."""
    from transformers import AutoConfig

    model = recipe.model
    if model.tiny is not None:  # the vocabulary can only be smaller than vocab_size: an upper bound
        return llama_config(model.tiny, model.tiny.vocab_size)
    if model.gguf is not None or model.builtin is not None:
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

        path = model.gguf or builtin_gguf_path(model.builtin)
        values = load_gguf_checkpoint(str(path), return_tensors=False)["config"]
        values.pop("_model_name_or_path", None)
        return AutoConfig.for_model(values.pop("model_type"), **values)
    try:
        return AutoConfig.from_pretrained(
            model.name_or_path, trust_remote_code=model.trust_remote_code, local_files_only=True
        )
    except OSError:
        if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
            return None
    try:
        return AutoConfig.from_pretrained(model.name_or_path, trust_remote_code=model.trust_remote_code)
    except OSError:
        return None


def memory_table(recipe: Recipe) -> str:
    """A markdown table of each stage's estimated peak memory, or why it cannot be estimated."""
    config = architecture_config(recipe)
    if config is None:
        return (
            f"Memory estimate: unavailable; the config of {recipe.model.name_or_path!r} is not in the local cache "
            "(offline?)."
        )
    policy = count_parameters(config, recipe.model.lora)
    reward = count_parameters(config, recipe.reward_model.lora, for_reward=True)
    stages = stage_footprints(recipe, policy, reward)
    unit, size = ("GiB", GIB) if max(f.total for f in stages.values()) >= GIB else ("MiB", 1024**2)
    lines = [
        f"Model: {policy.total / 1e6:,.1f}M parameters"
        + (f"; LoRA adds {policy.lora / 1e6:,.2f}M trainable" if recipe.model.lora else "; full fine-tuning"),
        "",
        f"| stage | weights {unit} | gradients {unit} | optimizer {unit} | activations {unit} (rough) | total {unit} |",
        "|---|---|---|---|---|---|",
    ]
    for stage, f in stages.items():
        lines.append(
            f"| {stage} | {f.weights / size:.2f} | {f.gradients / size:.2f} | {f.optimizer / size:.2f} "
            f"| {f.activations / size:.2f} | {f.total / size:.2f} |"
        )
    lines.append(
        f"\nActivations assume {PROMPT_TOKENS_ASSUMED}-token prompts in PPO and sampling; "
        "CUDA and allocator overhead not included."
    )
    return "\n".join(lines)
