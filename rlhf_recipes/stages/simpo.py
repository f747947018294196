"""SimPO stage: trl.experimental.cpo's CPOTrainer with loss_type "simpo" and cpo_alpha 0, on the labeled
pairs. No reference model: the implicit reward is the length-normalised log-likelihood, beta/|y| log pi(y|x).

The only module that imports trl.experimental.cpo. A held-out curve measures KL against the initial
policy: with LoRA the policy with its adapter disabled, else a copy loaded for the curve alone.
"""

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from ..config.base import PositiveFloat
from ..config.methods import NonNegativeFloat, OfflineMethod
from ..config.schema import Compute
from ..generation.formatting import uses_chat_template
from ..models.loading import Loading, Tuning, lora_config
from ..runtime.stage import stage
from ..training.curve import Curve, HeldoutCurve
from ..training.data import train_pairs, truncated_pairs
from ..training.installed import trainer_class
from ..training.trainer import final_loss, fit, load_policy_and_reference, offline_arguments, save_trained_policy


class Simpo(OfflineMethod):
    """SimPO (trl.experimental.cpo with loss_type simpo, cpo_alpha 0): a length-normalised margin loss with
    no reference model."""

    method: Literal["simpo"] = Field("simpo", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "SimPO"
    SECTION: ClassVar[str] = "SimPO on the labeled pairs; omit to skip."
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("loss", "loss"),
        ("rewards/margins", "reward margin"),
        ("rewards/accuracies", "reward accuracy"),
    )
    TRAINER: ClassVar[str] = "trl.experimental.cpo:CPOTrainer"
    REFERENCE: ClassVar[bool] = False

    beta: PositiveFloat = Field(2.0, description="beta: scale of the length-normalised log-likelihood reward.")
    gamma: NonNegativeFloat = Field(1.0, description="gamma: the target reward margin.")

    def describe(self) -> str:
        return f"beta {self.beta:g}, gamma {self.gamma:g}, {self.epochs:g} epoch(s)"


@stage(version=1)
def simpo(
    *,
    settings: Simpo,
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
    from trl.experimental.cpo import CPOConfig

    CPOTrainer = trainer_class(Simpo.TRAINER)

    set_seed(seed)
    tokenizer, network, reference, device = load_policy_and_reference(
        policy, loading, tuning, compute, reference=curve is not None
    )
    pairs = truncated_pairs(
        train_pairs(preferences), tokenizer, settings.max_length_tokens, uses_chat_template(tokenizer)
    )
    args = CPOConfig(
        **offline_arguments(settings, compute, out_dir, seed),
        loss_type="simpo",
        cpo_alpha=0.0,  # SimPO: no behaviour-cloning term
        beta=settings.beta,
        simpo_gamma=settings.gamma,
    )
    peft = lora_config(tuning.lora, "CAUSAL_LM") if tuning.lora else None
    trainer = CPOTrainer(model=network, args=args, train_dataset=pairs, processing_class=tokenizer, peft_config=peft)
    trained = trainer.accelerator.unwrap_model(trainer.model)
    tracker = HeldoutCurve.start(curve, tokenizer, device, trained, reference, seed)
    history = fit(trainer, stage="simpo", out_dir=out_dir, learning_rate=settings.learning_rate, curve=tracker)
    save_trained_policy(trainer, trained.eval(), tokenizer, out_dir, str(policy), loading, tuning)
    return {"pairs": len(pairs), "steps": trainer.state.global_step, "final_loss": final_loss(history)}
