"""SimPO stage: trl.experimental.cpo's CPOTrainer with loss_type "simpo" and cpo_alpha 0, on the labeled
pairs. No reference model: the implicit reward is the length-normalised log-likelihood, beta/|y| log pi(y|x).

The only module that imports trl.experimental.cpo. A held-out curve measures KL against the initial
policy: with LoRA the policy with its adapter disabled, else a copy loaded for the curve alone.
"""

from pathlib import Path

from ..config.methods import Simpo
from ..config.schema import Compute
from ..generation.formatting import uses_chat_template
from ..models.loading import Loading, Tuning, lora_config
from ..runtime.stage import stage
from ..training.curve import Curve, HeldoutCurve
from ..training.data import train_pairs, truncated_pairs
from ..training.trainer import final_loss, fit, load_policy_and_reference, offline_arguments, save_trained_policy


@stage(version=1)
def simpo(
    *,
    simpo: Simpo,
    loading: Loading,
    tuning: Tuning,
    compute: Compute,
    policy: Path | str,
    preferences: Path,
    curve: Curve | None,
    seed: int,
    out_dir: Path,
):
    """Train on the train pairs, each response cut to simpo.max_length_tokens; save the policy to out_dir."""
    from transformers import set_seed
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    set_seed(seed)
    tokenizer, network, reference, device = load_policy_and_reference(
        policy, loading, tuning, compute, reference=curve is not None
    )
    pairs = truncated_pairs(train_pairs(preferences), tokenizer, simpo.max_length_tokens, uses_chat_template(tokenizer))
    args = CPOConfig(
        **offline_arguments(simpo, compute, out_dir, seed),
        loss_type="simpo",
        cpo_alpha=0.0,  # SimPO: no behaviour-cloning term
        beta=simpo.beta,
        simpo_gamma=simpo.gamma,
    )
    peft = lora_config(tuning.lora, "CAUSAL_LM") if tuning.lora else None
    trainer = CPOTrainer(model=network, args=args, train_dataset=pairs, processing_class=tokenizer, peft_config=peft)
    trained = trainer.accelerator.unwrap_model(trainer.model)
    tracker = HeldoutCurve.start(curve, tokenizer, device, trained, reference, seed)
    history = fit(trainer, stage="simpo", out_dir=out_dir, learning_rate=simpo.learning_rate, curve=tracker)
    save_trained_policy(trainer, trained.eval(), tokenizer, out_dir, str(policy), loading, tuning)
    return {"pairs": len(pairs), "steps": trainer.state.global_step, "final_loss": final_loss(history)}
