"""KTO stage: the labeled pairs unpaired into desirable (chosen) and undesirable (rejected) responses,
trained with TRL's KTOTrainer against the initial policy as the frozen reference.

With LoRA, the reference is the policy with its adapter disabled: no second copy in memory.
"""

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from ..config.base import PositiveFloat
from ..config.methods import OfflineMethod
from ..config.schema import Compute
from ..models.loading import Loading, Tuning, lora_config
from ..runtime.stage import stage
from ..training.curve import Curve, HeldoutCurve
from ..training.data import train_pairs, unpaired
from ..training.installed import trainer_class
from ..training.trainer import final_loss, fit, load_policy_and_reference, offline_arguments, save_trained_policy


class Kto(OfflineMethod):
    """KTO (TRL's KTOTrainer): the same labeled pairs, unpaired into desirable and undesirable responses."""

    method: Literal["kto"] = Field("kto", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "KTO"
    SECTION: ClassVar[str] = "KTO on the labeled pairs, unpaired; omit to skip."
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("loss", "loss"),
        ("kl", "KL estimate of the batch"),
        ("rewards/chosen", "implicit reward, desirable"),
    )
    TRAINER: ClassVar[str] = "trl:KTOTrainer"
    IMPLICIT_REWARD: ClassVar[bool] = True

    beta: PositiveFloat = Field(0.1, description="beta: strength of the implicit KL constraint.")
    desirable_weight: PositiveFloat = Field(1.0, description="Weight of the loss on desirable (chosen) responses.")
    undesirable_weight: PositiveFloat = Field(
        1.0, description="Weight of the loss on undesirable (rejected) responses."
    )
    batch_size: Annotated[int, Field(ge=2)] = Field(
        8, description="Responses per optimizer step (>= 2: KTO's KL estimate pairs responses within a batch)."
    )

    def describe(self) -> str:
        return f"beta {self.beta:g}, {self.epochs:g} epoch(s)"


@stage(version=1)
def kto(
    *,
    settings: Kto,
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
    from trl import KTOConfig

    KTOTrainer = trainer_class(Kto.TRAINER)

    set_seed(seed)
    tokenizer, network, reference, device = load_policy_and_reference(policy, loading, tuning, compute)
    rows = unpaired(train_pairs(preferences), seed)
    args = KTOConfig(
        **offline_arguments(settings, compute, out_dir, seed),
        beta=settings.beta,
        desirable_weight=settings.desirable_weight,
        undesirable_weight=settings.undesirable_weight,
    )
    peft = lora_config(tuning.lora, "CAUSAL_LM") if tuning.lora else None
    trainer = KTOTrainer(
        model=network, ref_model=reference, args=args, train_dataset=rows, processing_class=tokenizer, peft_config=peft
    )
    trained = trainer.accelerator.unwrap_model(trainer.model)
    tracker = HeldoutCurve.start(curve, tokenizer, device, trained, reference, seed)
    history = fit(trainer, stage="kto", out_dir=out_dir, learning_rate=settings.learning_rate, curve=tracker)
    save_trained_policy(trainer, trained.eval(), tokenizer, out_dir, str(policy), loading, tuning)
    return {"responses": len(rows), "steps": trainer.state.global_step, "final_loss": final_loss(history)}
