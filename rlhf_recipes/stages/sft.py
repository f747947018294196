"""SFT stage: warm-start the policy on demonstrations (InstructGPT step 1) with TRL's SFTTrainer."""

import json
from pathlib import Path

from ..config.base import Lora
from ..config.schema import Compute, Sft
from ..errors import RecipeError
from ..generation.formatting import demonstration_row, uses_chat_template
from ..models.loading import Loading, device_for, load_policy, load_tokenizer, lora_config, merge_adapter
from ..runtime.distributed import is_main
from ..runtime.stage import stage
from ..training.trainer import final_loss, fit, per_process, save_sharded, shards_parameters, trainer_arguments


def read_demonstrations(path: Path) -> list[tuple[str, str]]:
    """(prompt, completion) pairs of a .jsonl file with prompt and completion text fields."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise RecipeError(f"sft.demonstrations: {path}:{number}: not valid JSON ({error.msg}).") from error
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("prompt"), str)
            or not isinstance(row.get("completion"), str)
        ):
            raise RecipeError(f"sft.demonstrations: {path}:{number}: needs text fields prompt and completion.")
        rows.append((row["prompt"], row["completion"]))
    if not rows:
        raise RecipeError(f"sft.demonstrations: {path} holds no demonstrations.")
    return rows


@stage(version=1)
def sft(
    *,
    settings: Sft,
    loading: Loading,
    lora: Lora | None,
    compute: Compute,
    policy: Path | str,
    seed: int,
    out_dir: Path,
) -> dict:
    """Fine-tune `policy` on the demonstrations (loss on completions only) and save full weights to
    out_dir: with LoRA, the adapter goes to out_dir/adapter and is merged into the saved weights,
    because the SFT policy is the base (and the reference) of every later stage."""
    from datasets import Dataset
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    set_seed(seed)
    base = str(policy)
    tokenizer = load_tokenizer(base, loading.trust_remote_code)
    chat = uses_chat_template(tokenizer)
    network = load_policy(base, loading, device_for(compute))
    args = SFTConfig(
        **trainer_arguments(compute, out_dir, seed),
        num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        per_device_train_batch_size=per_process(settings.batch_size, "sft.batch_size"),
        max_length=settings.max_length_tokens,
        completion_only_loss=True,
    )
    dataset = Dataset.from_list(
        [demonstration_row(p, c, chat) for p, c in read_demonstrations(settings.demonstrations)]
    )
    peft = lora_config(lora, "CAUSAL_LM") if lora else None
    trainer = SFTTrainer(model=network, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft)
    history = fit(trainer, stage="sft", out_dir=out_dir, learning_rate=settings.learning_rate)
    trained = trainer.accelerator.unwrap_model(trainer.model)
    if shards_parameters(trainer):
        save_sharded(trainer, tokenizer, out_dir)
    elif is_main():
        if lora:
            trained.save_pretrained(out_dir / "adapter")
            merge_adapter(base, out_dir / "adapter", out_dir, loading)
        else:
            trained.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    return {"demonstrations": len(dataset), "steps": trainer.state.global_step, "final_loss": final_loss(history)}
