"""ORPO stage: trl.experimental.orpo's ORPOTrainer on the labeled pairs: the supervised loss on the chosen
response plus beta times an odds-ratio penalty. No reference model.

The only module that imports trl.experimental.orpo. A held-out curve measures KL against the initial
policy: with LoRA the policy with its adapter disabled, else a copy loaded for the curve alone.
"""

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from ..config.base import PositiveFloat
from ..config.methods import OfflineMethod
from ..config.schema import Compute
from ..generation.formatting import uses_chat_template
from ..models.loading import Loading, Tuning, lora_config
from ..runtime.stage import stage
from ..training.curve import Curve, HeldoutCurve
from ..training.data import train_pairs, truncated_pairs
from ..training.installed import trainer_class
from ..training.trainer import final_loss, fit, load_policy_and_reference, offline_arguments, save_trained_policy


class Orpo(OfflineMethod):
    """ORPO (trl.experimental.orpo): supervised loss on the chosen response plus an odds-ratio penalty, with
    no reference model."""

    method: Literal["orpo"] = Field("orpo", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "ORPO"
    SECTION: ClassVar[str] = "ORPO on the labeled pairs; omit to skip."
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("loss", "loss"),
        ("log_odds_chosen", "log odds ratio, chosen vs rejected"),
        ("nll_loss", "SFT loss on chosen"),
    )
    TRAINER: ClassVar[str] = "trl.experimental.orpo:ORPOTrainer"
    REFERENCE: ClassVar[bool] = False

    beta: PositiveFloat = Field(0.1, description="lambda: weight of the odds-ratio term against the SFT loss.")

    def describe(self) -> str:
        return f"lambda {self.beta:g}, {self.epochs:g} epoch(s)"


@stage(version=1)
def orpo(
    *,
    settings: Orpo,
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
    from trl.experimental.orpo import ORPOConfig

    ORPOTrainer = trainer_class(Orpo.TRAINER)

    set_seed(seed)
    tokenizer, network, reference, device = load_policy_and_reference(
        policy, loading, tuning, compute, reference=curve is not None
    )
    pairs = truncated_pairs(
        train_pairs(preferences), tokenizer, settings.max_length_tokens, uses_chat_template(tokenizer)
    )
    args = ORPOConfig(**offline_arguments(settings, compute, out_dir, seed), beta=settings.beta)
    peft = lora_config(tuning.lora, "CAUSAL_LM") if tuning.lora else None
    trainer = ORPOTrainer(model=network, args=args, train_dataset=pairs, processing_class=tokenizer, peft_config=peft)
    trained = trainer.accelerator.unwrap_model(trainer.model)
    tracker = HeldoutCurve.start(curve, tokenizer, device, trained, reference, seed)
    history = fit(trainer, stage="orpo", out_dir=out_dir, learning_rate=settings.learning_rate, curve=tracker)
    save_trained_policy(trainer, trained.eval(), tokenizer, out_dir, str(policy), loading, tuning)
    return {"pairs": len(pairs), "steps": trainer.state.global_step, "final_loss": final_loss(history)}
