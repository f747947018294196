"""DPO stage: fit the policy directly to the preference pairs with TRL's DPOTrainer (no reward model).

With LoRA, the reference is the policy with its adapter disabled: no second copy in memory.
"""

from pathlib import Path

from ..config.methods import Dpo
from ..config.schema import Compute
from ..models.loading import Loading, Tuning, device_for, load_policy, load_tokenizer, lora_config
from ..run.stage import stage
from ..training.curve import Curve, HeldoutCurve
from ..training.trainer import final_loss, fit, per_process, save_trained_policy, trainer_arguments


@stage(version=1)
def dpo(
    *,
    dpo: Dpo,
    loading: Loading,
    tuning: Tuning,
    compute: Compute,
    policy: Path | str,
    preferences: Path,
    curve: Curve | None,
    seed: int,
    out_dir: Path,
):
    """Train on the train pairs with the initial policy as the frozen reference; save the policy to out_dir.

    preferences: the preferences stage's output. With a curve, also write the held-out curve to
    out_dir/curve.json.
    """
    from datasets import load_from_disk
    from transformers import set_seed
    from trl import DPOConfig, DPOTrainer

    set_seed(seed)
    base, device = str(policy), device_for(compute)
    tokenizer = load_tokenizer(base, loading.trust_remote_code)
    network = load_policy(base, loading, device)
    reference = None if tuning.lora else load_policy(base, loading, device)
    pairs = load_from_disk(str(preferences / "dataset"), keep_in_memory=True)["train"].select_columns(
        ["prompt", "chosen", "rejected"]
    )
    args = DPOConfig(
        **trainer_arguments(compute, out_dir, seed),
        num_train_epochs=dpo.epochs,
        learning_rate=dpo.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        per_device_train_batch_size=per_process(dpo.batch_size, "dpo.batch_size"),
        beta=dpo.beta,
        loss_type=[dpo.loss_type],
        max_length=dpo.max_length_tokens,
    )
    trainer = DPOTrainer(
        model=network,
        ref_model=reference,
        args=args,
        train_dataset=pairs,
        processing_class=tokenizer,
        peft_config=lora_config(tuning.lora, "CAUSAL_LM") if tuning.lora else None,
    )
    trained = trainer.accelerator.unwrap_model(trainer.model)
    tracker = HeldoutCurve.start(curve, tokenizer, device, trained, reference, seed)
    history = fit(trainer, stage="dpo", out_dir=out_dir, learning_rate=dpo.learning_rate, curve=tracker)
    save_trained_policy(trainer, trained.eval(), tokenizer, out_dir, base, loading, tuning)
    return {"pairs": len(pairs), "steps": trainer.state.global_step, "final_loss": final_loss(history)}
