"""Every way the pipeline gets a model or tokenizer: one loading path for hub ids and local model
directories (the tiny model and GGUF conversions are local directories too); LoRA and 4-bit settings."""

import os
from dataclasses import dataclass, replace
from pathlib import Path

from ..config.base import Lora
from ..config.schema import Compute, Model
from ..errors import RecipeError

# Tokens tried, in order, as a pad token when a tokenizer has none or pads with EOS.
# Last: "Ā", a byte-level BPE's token for the NUL byte (GPT-2 has no other spare token). Text holds no NUL
# byte, so a policy does not write it and PPO does not take it for a response's end. (The letter Ā of Latvian
# or Maori text is other bytes, and other tokens.)
PAD_CANDIDATES = ["<|endoftext|>", "<|finetune_right_pad_id|>", "<|pad|>", "<pad>", "[PAD]", "<unk>", "Ā"]


@dataclass(frozen=True)
class Loading:
    """How one model's weights are loaded: what a stage that loads the policy (or the reward model) reads
    of the recipe. The policy's comes from the model section; the reward model's too, but for its own
    reward_model.load_in_4bit."""

    dtype: str = "float32"
    trust_remote_code: bool = False
    load_in_4bit: bool = False

    @classmethod
    def of(cls, model: Model, device: str, load_in_4bit: bool | None = None) -> "Loading":
        """How `model` loads on `device` (model.dtype auto resolved there)."""
        dtype = cls.auto(device).dtype if model.dtype == "auto" else model.dtype
        return cls(dtype, model.trust_remote_code, model.load_in_4bit if load_in_4bit is None else load_in_4bit)

    @classmethod
    def auto(cls, device: str) -> "Loading":
        """dtype auto on `device`: bfloat16 where it computes bfloat16 natively, else float32."""
        return cls("bfloat16" if native_bfloat16(device) else "float32")

    def unquantized(self) -> "Loading":
        return replace(self, load_in_4bit=False)


@dataclass(frozen=True)
class Tuning:
    """How a training stage tunes the policy, from the model section: LoRA adapters (None: full
    fine-tuning), and whether a LoRA policy is also saved with its adapter merged in."""

    lora: Lora | None = None
    save_merged: bool = False

    @classmethod
    def of(cls, model: Model) -> "Tuning":
        return cls(model.lora, model.save_merged)


# oneDNN's instruction-set caps below AVX512_CORE_BF16 (https://uxlfoundation.github.io/oneDNN/dev_guide_cpu_dispatcher_control.html)
ONEDNN_CAPS_WITHOUT_BFLOAT16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}


def _onednn_cap() -> str:
    return os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "ALL")).strip().upper()


def native_bfloat16(device: str) -> bool:
    """Does `device` compute bfloat16 natively? A CPU without AVX512-BF16 or AMX emulates it, hundreds of
    times slower than float32 (0.2 against 60 GFLOP/s measured on an AVX2-only EPYC), and so does one whose
    oneDNN is capped below AVX512_CORE_BF16 (ONEDNN_MAX_CPU_ISA=AVX2: 2,048² matmuls took over a minute)."""
    import torch

    if device == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if _onednn_cap() in ONEDNN_CAPS_WITHOUT_BFLOAT16:
        return False  # the CPU has it, but oneDNN was told not to use it: its matmuls would emulate bfloat16
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    if all(hasattr(torch.cpu, check) for check in checks):
        return any(getattr(torch.cpu, check)() for check in checks)
    try:  # a torch without those (private) checks: the CPU's flags, on Linux
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolved_compute(compute: Compute) -> Compute:
    """`compute` with bf16 auto decided for its device."""
    if compute.bf16 != "auto":
        return compute
    return compute.model_copy(update={"bf16": native_bfloat16(device_for(compute, visible=False))})


def device_for(compute: Compute, visible: bool = True) -> str:
    """The device compute.device names (auto: a GPU if one is visible, else the CPU). With `visible`, a GPU
    the recipe asks for must be visible here; without, the plan of a GPU recipe can be made on a CPU."""
    import torch

    if compute.device == "cuda" and visible and not torch.cuda.is_available():
        raise RecipeError("compute.device: 'cuda' but no GPU is visible. Fix: set compute.device: auto or cpu.")
    if compute.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return compute.device


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False):
    """The policy's tokenizer, left-padded for generation, with a pad token distinct from EOS.

    PPO finds where a response ends by its first pad token, so pad == EOS would cut the EOS
    off every response the reward model scores. A tokenizer without a separate pad token gets
    the first of PAD_CANDIDATES that it already has; no token is added, so no embedding changes.
    """
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except OSError as error:
        raise RecipeError(f"model: cannot load a tokenizer from {name_or_path!r}: {error}") from error
    if tokenizer.eos_token_id is None:
        raise RecipeError(f"model: the tokenizer of {name_or_path!r} has no EOS token, so responses cannot end.")
    if tokenizer.pad_token_id is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        vocabulary = tokenizer.get_vocab()
        usable = [
            t
            for t in PAD_CANDIDATES
            if t in vocabulary and vocabulary[t] not in (tokenizer.eos_token_id, tokenizer.bos_token_id)
        ]
        if not usable:
            raise RecipeError(
                f"model: the tokenizer of {name_or_path!r} has no pad token distinct from EOS, and none of "
                f"{PAD_CANDIDATES} to use as one. Fix: save the tokenizer with a pad token and point the recipe at it."
            )
        tokenizer.pad_token = usable[0]
    tokenizer.padding_side = "left"
    return tokenizer


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def _load_kwargs(loading: Loading, device: str) -> dict:
    # safetensors only: a pickled checkpoint (.bin) can run code when loaded
    kwargs = {
        "dtype": torch_dtype(loading.dtype),
        "trust_remote_code": loading.trust_remote_code,
        "use_safetensors": True,
    }
    if loading.load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch_dtype(loading.dtype),
        )
        kwargs["device_map"] = {"": device}
    return kwargs


def load_policy(name_or_path: str, loading: Loading, device: str = "cpu"):
    """A causal LM in eval mode, in loading.dtype, 4-bit NF4 when loading.load_in_4bit."""
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **_load_kwargs(loading, device))
    except OSError as error:
        raise RecipeError(
            f"model: cannot load a causal LM from {name_or_path!r} (safetensors weights are required): {error}"
        ) from error
    head = model.get_output_embeddings()
    if head is not None:
        head.register_forward_pre_hook(_contiguous_input)
    return (model if loading.load_in_4bit else model.to(device)).eval()


def takes_logits_to_keep(model) -> bool:
    """Can this causal LM (or the model under its LoRA adapter) compute logits for the last positions only?"""
    import inspect

    forward = getattr(model, "get_base_model", lambda: model)().forward
    return "logits_to_keep" in inspect.signature(forward).parameters


def _contiguous_input(head, args):
    """A model asked for the logits of its last positions only (generate()'s prefill, TRL's rollouts,
    `logits_to_keep` in scoring and sampling) hands the LM head a non-contiguous (batch, k, hidden)
    slice. Against a weight that does not require grad (any frozen head: under LoRA, 4-bit, a
    reference model) PyTorch's matmul then does not fold it into one matrix product but copies the
    weight once per row and multiplies in batches (pytorch/pytorch#186148): with SmolLM2's 49k
    vocabulary and 128 rows, 7 GB and seconds per call. A contiguous input costs one batch x k x
    hidden copy."""
    if not args:  # called with keywords only: leave it be
        return None
    return (args[0].contiguous(), *args[1:])


def load_reward_model(name_or_path: str, pad_token_id: int, loading: Loading, device: str = "cpu"):
    """A sequence-classification model with one output (num_labels=1): a reward or value model.

    Loaded from a causal LM, the score head is new and drawn from torch's current seed.
    """
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        name_or_path, num_labels=1, **_load_kwargs(loading, device)
    )
    model.config.pad_token_id = pad_token_id
    return (model if loading.load_in_4bit else model.to(device)).eval()


def lora_config(config: Lora, task_type: str):
    """peft's LoraConfig for our `lora:` section; task_type CAUSAL_LM, SEQ_CLS (trains the score head
    fully as well) or FEATURE_EXTRACTION (a bare backbone)."""
    from peft import LoraConfig

    return LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=config.target_modules,
        task_type=task_type,
    )


def is_adapter(path: str | Path) -> bool:
    """Does this directory hold a LoRA adapter (to apply to a base) rather than full weights?"""
    return (Path(path) / "adapter_config.json").is_file()


def save_policy(model, tokenizer, out_dir: Path, base: str, loading: Loading, merged: bool) -> None:
    """Save a trained policy: full weights, or its LoRA adapter; with `merged`, also (or, for an
    adapter, additionally in out_dir/merged) the base with the adapter merged in, in loading.dtype."""
    from peft import PeftModel

    tokenizer.save_pretrained(out_dir)
    if not isinstance(model, PeftModel):
        model.save_pretrained(out_dir)
        return
    model.save_pretrained(out_dir)
    if merged:
        merge_adapter(base, out_dir, out_dir / "merged", loading)
        tokenizer.save_pretrained(out_dir / "merged")


def merge_adapter(
    base: str, adapter_dir: Path, out_dir: Path, loading: Loading, reward_pad_token_id: int | None = None
):
    """Load `base` unquantized, apply the adapter in adapter_dir, merge, save full weights to out_dir."""
    from peft import PeftModel

    if reward_pad_token_id is None:
        model = load_policy(base, loading.unquantized())
    else:
        model = load_reward_model(base, reward_pad_token_id, loading.unquantized())
    PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload().save_pretrained(out_dir)
