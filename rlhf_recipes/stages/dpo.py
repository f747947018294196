"""DPO stage: fit the policy directly to the preference pairs with TRL's DPOTrainer (no reward model).

With LoRA, the reference is the policy with its adapter disabled: no second copy in memory.
"""

from pathlib import Path

from ..models import device_for, load_policy, load_tokenizer, lora_config, save_policy
from ..recipe import Compute, Dpo, Model
from .common import quiet, save_logs, trainer_arguments


def train_dpo(config: Dpo, settings: Model, compute: Compute, policy: str, preferences_dir: Path, out_dir: Path, seed: int):
    """Train on the train pairs with the initial policy as the frozen reference; save the policy to out_dir."""
    from datasets import load_from_disk
    from transformers import set_seed
    from trl import DPOConfig, DPOTrainer

    set_seed(seed)
    device = device_for(compute)
    tokenizer = load_tokenizer(policy, settings.trust_remote_code)
    model = load_policy(policy, settings, device)
    reference = None if settings.lora else load_policy(policy, settings, device)
    pairs = load_from_disk(str(preferences_dir / "dataset"))["train"].select_columns(["prompt", "chosen", "rejected"])
    args = DPOConfig(
        **trainer_arguments(compute, out_dir, seed),
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        per_device_train_batch_size=config.batch_size,
        beta=config.beta,
        loss_type=[config.loss_type],
        max_length=config.max_length_tokens,
    )
    trainer = DPOTrainer(
        model=model,
        ref_model=reference,
        args=args,
        train_dataset=pairs,
        processing_class=tokenizer,
        peft_config=lora_config(settings.lora, "CAUSAL_LM") if settings.lora else None,
    )
    quiet(trainer)
    trainer.train()
    trained = trainer.accelerator.unwrap_model(trainer.model).eval()
    save_policy(trained, tokenizer, out_dir, policy, settings, merged=settings.save_merged)
    history = save_logs(trainer, out_dir)
    losses = [entry["loss"] for entry in history if "loss" in entry]
    return {"pairs": len(pairs), "steps": trainer.state.global_step, "final_loss": losses[-1] if losses else None}
