"""DPO stage: fit the policy directly to the preference pairs with TRL's DPOTrainer (no reward model).

With LoRA, the reference is the policy with its adapter disabled: no second copy in memory.
"""

from pathlib import Path

from ..run.distributed import is_main
from ..models.loading import device_for, load_policy, load_reward_model, load_tokenizer, lora_config, save_policy
from ..config.schema import Compute, Dpo, Model, Reward
from .common import per_process, quiet, resume_point, save_logs, save_sharded, shards_parameters, trainer_arguments
from .curves import CurveSpec, HeldoutCurve
from .health import FiniteTraining


def train_dpo(
    config: Dpo,
    settings: Model,
    reward_config: Reward,
    compute: Compute,
    policy: str,
    preferences_dir: Path,
    out_dir: Path,
    seed: int,
    curve: CurveSpec | None = None,
):
    """Train on the train pairs with the initial policy as the frozen reference; save the policy to out_dir.

    With config.eval_every_steps and a CurveSpec, also write the held-out curve to out_dir/curve.json.
    """
    from datasets import load_from_disk
    from transformers import set_seed
    from trl import DPOConfig, DPOTrainer

    set_seed(seed)
    device = device_for(compute)
    tokenizer = load_tokenizer(policy, settings.trust_remote_code)
    model = load_policy(policy, settings, device)
    reference = None if settings.lora else load_policy(policy, settings, device)
    pairs = load_from_disk(str(preferences_dir / "dataset"), keep_in_memory=True)["train"].select_columns(["prompt", "chosen", "rejected"])
    args = DPOConfig(
        **trainer_arguments(compute, out_dir, seed),
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        per_device_train_batch_size=per_process(config.batch_size, "dpo.batch_size"),
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
    trainer.add_callback(FiniteTraining("dpo", config.learning_rate))
    tracker = None
    if config.eval_every_steps and curve is not None:
        scorer = load_reward_model(curve.reward_model, tokenizer.pad_token_id, settings, device, reward_config.load_in_4bit)
        tracker = HeldoutCurve(config.eval_every_steps, curve.evaluation, curve.gold, tokenizer, scorer, curve.heldout, seed)
        policy_model = trainer.accelerator.unwrap_model(trainer.model)
        trainer.add_callback(tracker.attach(policy_model, reference, out_dir / "curve.json", resume_point(out_dir)))
    trainer.train(resume_from_checkpoint=resume_point(out_dir))
    trained = trainer.accelerator.unwrap_model(trainer.model).eval()
    if shards_parameters(trainer):
        save_sharded(trainer, tokenizer, out_dir)
    elif is_main():
        save_policy(trained, tokenizer, out_dir, policy, settings, merged=settings.save_merged)
    history = save_logs(trainer, out_dir)
    losses = [entry["loss"] for entry in history if "loss" in entry]
    return {"pairs": len(pairs), "steps": trainer.state.global_step, "final_loss": losses[-1] if losses else None}
