"""KTO stage: the labeled pairs unpaired into desirable (chosen) and undesirable (rejected) responses,
trained with TRL's KTOTrainer against the initial policy as the frozen reference.

With LoRA, the reference is the policy with its adapter disabled: no second copy in memory.
"""

from pathlib import Path

from ..config.methods import Kto
from ..config.schema import Compute
from ..models.loading import Loading, Tuning, lora_config
from ..runtime.stage import stage
from ..training.curve import Curve, HeldoutCurve
from ..training.data import train_pairs, unpaired
from ..training.trainer import final_loss, fit, load_policy_and_reference, offline_arguments, save_trained_policy


@stage(version=1)
def kto(
    *,
    kto: Kto,
    loading: Loading,
    tuning: Tuning,
    compute: Compute,
    policy: Path | str,
    preferences: Path,
    curve: Curve | None,
    seed: int,
    out_dir: Path,
):
    """Train on the unpaired train responses; save the policy (or adapter) to out_dir.

    preferences: the preferences stage's output. With a curve, also write the held-out curve to
    out_dir/curve.json.
    """
    from transformers import set_seed
    from trl import KTOConfig, KTOTrainer

    set_seed(seed)
    tokenizer, network, reference, device = load_policy_and_reference(policy, loading, tuning, compute)
    rows = unpaired(train_pairs(preferences), seed)
    args = KTOConfig(
        **offline_arguments(kto, compute, out_dir, seed),
        beta=kto.beta,
        desirable_weight=kto.desirable_weight,
        undesirable_weight=kto.undesirable_weight,
    )
    peft = lora_config(tuning.lora, "CAUSAL_LM") if tuning.lora else None
    trainer = KTOTrainer(
        model=network, ref_model=reference, args=args, train_dataset=rows, processing_class=tokenizer, peft_config=peft
    )
    trained = trainer.accelerator.unwrap_model(trainer.model)
    tracker = HeldoutCurve.start(curve, tokenizer, device, trained, reference, seed)
    history = fit(trainer, stage="kto", out_dir=out_dir, learning_rate=kto.learning_rate, curve=tracker)
    save_trained_policy(trainer, trained.eval(), tokenizer, out_dir, str(policy), loading, tuning)
    return {"responses": len(rows), "steps": trainer.state.global_step, "final_loss": final_loss(history)}
