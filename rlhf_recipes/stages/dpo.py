"""DPO stage: fit the policy directly to the preference pairs with TRL's DPOTrainer (no reward model),
with any of TRL 1.12's DPO losses or a weighted sum of several.

With LoRA, the reference is the policy with its adapter disabled: no second copy in memory.
"""

from pathlib import Path

from ..config.methods import Dpo
from ..config.schema import Compute
from ..models.loading import Loading, Tuning, lora_config
from ..runtime.stage import stage
from ..training.curve import Curve, HeldoutCurve
from ..training.data import train_pairs
from ..training.trainer import final_loss, fit, load_policy_and_reference, offline_arguments, save_trained_policy


@stage(version=2)
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
    from transformers import set_seed
    from trl import DPOConfig, DPOTrainer

    set_seed(seed)
    tokenizer, network, reference, device = load_policy_and_reference(policy, loading, tuning, compute)
    pairs = train_pairs(preferences)
    args = DPOConfig(
        **offline_arguments(dpo, compute, out_dir, seed),
        beta=dpo.beta,
        loss_type=dpo.losses(),
        loss_weights=dpo.loss_weights,
        label_smoothing=dpo.label_smoothing,
    )
    peft = lora_config(tuning.lora, "CAUSAL_LM") if tuning.lora else None
    trainer = DPOTrainer(
        model=network, ref_model=reference, args=args, train_dataset=pairs, processing_class=tokenizer, peft_config=peft
    )
    trained = trainer.accelerator.unwrap_model(trainer.model)
    tracker = HeldoutCurve.start(curve, tokenizer, device, trained, reference, seed)
    history = fit(trainer, stage="dpo", out_dir=out_dir, learning_rate=dpo.learning_rate, curve=tracker)
    save_trained_policy(trainer, trained.eval(), tokenizer, out_dir, str(policy), loading, tuning)
    return {"pairs": len(pairs), "steps": trainer.state.global_step, "final_loss": final_loss(history)}
