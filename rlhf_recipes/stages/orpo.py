"""ORPO stage: trl.experimental.orpo's ORPOTrainer on the labeled pairs: the supervised loss on the chosen
response plus beta times an odds-ratio penalty. No reference model.

The only module that imports trl.experimental.orpo. A held-out curve measures KL against the initial
policy: with LoRA the policy with its adapter disabled, else a copy loaded for the curve alone.
"""

from pathlib import Path

from ..config.methods import Orpo
from ..config.schema import Compute
from ..generation.formatting import uses_chat_template
from ..models.loading import Loading, Tuning, lora_config
from ..runtime.stage import stage
from ..training.curve import Curve, HeldoutCurve
from ..training.data import train_pairs, truncated_pairs
from ..training.trainer import final_loss, fit, load_policy_and_reference, offline_arguments, save_trained_policy


@stage(version=1)
def orpo(
    *,
    orpo: Orpo,
    loading: Loading,
    tuning: Tuning,
    compute: Compute,
    policy: Path | str,
    preferences: Path,
    curve: Curve | None,
    seed: int,
    out_dir: Path,
):
    """Train on the train pairs, each response cut to orpo.max_length_tokens; save the policy to out_dir."""
    from transformers import set_seed
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    set_seed(seed)
    tokenizer, network, reference, device = load_policy_and_reference(
        policy, loading, tuning, compute, reference=curve is not None
    )
    pairs = truncated_pairs(train_pairs(preferences), tokenizer, orpo.max_length_tokens, uses_chat_template(tokenizer))
    args = ORPOConfig(**offline_arguments(orpo, compute, out_dir, seed), beta=orpo.beta)
    peft = lora_config(tuning.lora, "CAUSAL_LM") if tuning.lora else None
    trainer = ORPOTrainer(model=network, args=args, train_dataset=pairs, processing_class=tokenizer, peft_config=peft)
    trained = trainer.accelerator.unwrap_model(trainer.model)
    tracker = HeldoutCurve.start(curve, tokenizer, device, trained, reference, seed)
    history = fit(trainer, stage="orpo", out_dir=out_dir, learning_rate=orpo.learning_rate, curve=tracker)
    save_trained_policy(trainer, trained.eval(), tokenizer, out_dir, str(policy), loading, tuning)
    return {"pairs": len(pairs), "steps": trainer.state.global_step, "final_loss": final_loss(history)}
