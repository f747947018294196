"""SFT stage: warm-start the policy on demonstrations (InstructGPT step 1) with TRL's SFTTrainer."""

import json
from pathlib import Path

from ..run.distributed import is_main
from ..errors import RecipeError
from ..generation.formatting import demonstration_row, uses_chat_template
from ..models.loading import device_for, load_policy, load_tokenizer, lora_config, merge_adapter
from ..config.schema import Compute, Model, Sft
from .common import per_process, quiet, resume_point, save_logs, save_sharded, shards_parameters, trainer_arguments
from .health import FiniteTraining


def read_demonstrations(path: Path) -> list[tuple[str, str]]:
    """(prompt, completion) pairs of a .jsonl file with prompt and completion text fields."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise RecipeError(f"sft.demonstrations: {path}:{number}: not valid JSON ({error.msg}).")
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not isinstance(row.get("completion"), str):
            raise RecipeError(f"sft.demonstrations: {path}:{number}: needs text fields prompt and completion.")
        rows.append((row["prompt"], row["completion"]))
    if not rows:
        raise RecipeError(f"sft.demonstrations: {path} holds no demonstrations.")
    return rows


def train_sft(config: Sft, settings: Model, compute: Compute, base_model: str, out_dir: Path, seed: int) -> dict:
    """Fine-tune `base_model` on the demonstrations (loss on completions only) and save full weights
    to out_dir: with LoRA, the adapter goes to out_dir/adapter and is merged into the saved weights,
    because the SFT policy is the base (and the reference) of every later stage."""
    from datasets import Dataset
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    set_seed(seed)
    tokenizer = load_tokenizer(base_model, settings.trust_remote_code)
    chat = uses_chat_template(tokenizer)
    model = load_policy(base_model, settings, device_for(compute))
    args = SFTConfig(
        **trainer_arguments(compute, out_dir, seed),
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        per_device_train_batch_size=per_process(config.batch_size, "sft.batch_size"),
        max_length=config.max_length_tokens,
        completion_only_loss=True,
    )
    dataset = Dataset.from_list([demonstration_row(p, c, chat) for p, c in read_demonstrations(config.demonstrations)])
    peft = lora_config(settings.lora, "CAUSAL_LM") if settings.lora else None
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft)
    quiet(trainer)
    trainer.add_callback(FiniteTraining("sft", config.learning_rate))
    trainer.train(resume_from_checkpoint=resume_point(out_dir))
    trained = trainer.accelerator.unwrap_model(trainer.model)
    if shards_parameters(trainer):
        save_sharded(trainer, tokenizer, out_dir)
    elif is_main():
        if settings.lora:
            trained.save_pretrained(out_dir / "adapter")
            merge_adapter(base_model, out_dir / "adapter", out_dir, settings)
        else:
            trained.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    history = save_logs(trainer, out_dir)
    losses = [entry["loss"] for entry in history if "loss" in entry]
    return {"demonstrations": len(dataset), "steps": trainer.state.global_step, "final_loss": losses[-1]}
