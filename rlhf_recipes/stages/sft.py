"""SFT stage: warm-start the policy on demonstrations (InstructGPT step 1) with TRL's SFTTrainer."""

import json
from pathlib import Path

from ..errors import RecipeError
from ..models import load_policy, load_tokenizer
from ..recipe import Compute, Sft
from .common import quiet, save_logs, trainer_arguments


def read_demonstrations(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row.get("prompt"), str) or not isinstance(row.get("completion"), str):
            raise RecipeError(f"sft.demonstrations: {path}:{number}: needs text fields prompt and completion.")
        rows.append({"prompt": row["prompt"], "completion": row["completion"]})
    if not rows:
        raise RecipeError(f"sft.demonstrations: {path} holds no demonstrations.")
    return rows


def train_sft(config: Sft, compute: Compute, base_model: str, out_dir: Path, seed: int) -> dict:
    """Fine-tune `base_model` on the demonstrations (loss on completions only); save it to out_dir."""
    from datasets import Dataset
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    set_seed(seed)
    tokenizer = load_tokenizer(base_model)
    model = load_policy(base_model)
    args = SFTConfig(
        **trainer_arguments(compute, out_dir, seed),
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        per_device_train_batch_size=config.batch_size,
        max_length=config.max_length_tokens,
        completion_only_loss=True,
    )
    dataset = Dataset.from_list(read_demonstrations(config.demonstrations))
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    quiet(trainer)
    trainer.train()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    history = save_logs(trainer, out_dir)
    losses = [entry["loss"] for entry in history if "loss" in entry]
    return {"demonstrations": len(dataset), "steps": trainer.state.global_step, "final_loss": losses[-1]}
