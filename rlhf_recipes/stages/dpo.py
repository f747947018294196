"""DPO stage: fit the policy directly to the preference pairs with TRL's DPOTrainer (no reward model),
with any of TRL 1.12's DPO losses or a weighted sum of several.

With LoRA, the reference is the policy with its adapter disabled: no second copy in memory.
"""

import difflib
import typing
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from ..config.base import PositiveFloat
from ..config.methods import OfflineMethod
from ..config.schema import Compute
from ..models.loading import Loading, Tuning, lora_config
from ..runtime.stage import stage
from ..training.curve import Curve, HeldoutCurve
from ..training.data import train_pairs
from ..training.installed import trainer_class
from ..training.trainer import final_loss, fit, load_policy_and_reference, offline_arguments, save_trained_policy

Probability = Annotated[float, Field(ge=0, lt=0.5)]  # a label-flip rate
DPO_LOSSES = Literal[
    "sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot", "aot_unpaired",
    "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm",
]  # fmt: skip


SMOOTHED_LOSSES = {"robust", "exo_pair", "aot", "aot_unpaired"}  # TRL 1.12's losses that read label_smoothing


# Losses people name that are something else here.
LOSSES_ELSEWHERE = {
    "rpo": "RPO is loss_type: [sigmoid, sft], DPO's loss plus the SFT loss on the chosen response",
    "kto": "KTO is a method of its own: a kto: section",
    "simpo": "SimPO is a method of its own: a simpo: section",
    "orpo": "ORPO is a method of its own: an orpo: section",
}


def unknown_dpo_loss(name) -> str:
    """Why `name` is no loss_type of DPO, and the fix."""
    allowed = typing.get_args(DPO_LOSSES)
    close = difflib.get_close_matches(str(name), allowed, n=1)
    hint = LOSSES_ELSEWHERE.get(str(name)) or (f"did you mean {close[0]}?" if close else "")
    return (
        f"{name!r} is not a loss of TRL 1.12's DPOTrainer{f' ({hint})' if hint else ''}. Fix: one of "
        f"{', '.join(allowed)}, or a list of them summed with loss_weights"
    )


class Dpo(OfflineMethod):
    """Direct preference optimisation on the same train pairs (TRL's DPOTrainer), with any of TRL 1.12's
    losses or a weighted sum of several."""

    method: Literal["dpo"] = Field("dpo", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "DPO"
    SECTION: ClassVar[str] = "DPO on the labeled pairs; omit to skip."
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("loss", "loss"),
        ("rewards/margins", "implicit reward margin"),
        ("rewards/accuracies", "implicit reward accuracy"),
    )
    TRAINER: ClassVar[str] = "trl:DPOTrainer"
    IMPLICIT_REWARD: ClassVar[bool] = True

    beta: PositiveFloat = Field(0.1, description="beta: strength of the implicit KL constraint.")
    loss_type: DPO_LOSSES | Annotated[list[DPO_LOSSES], Field(min_length=1)] = Field(
        "sigmoid",
        description="sigmoid: the DPO paper's; hinge: SLiC; ipo: IPO; robust: robust DPO for noisy labels; any TRL "
        "1.12 loss (docs/method.md), or a list of them summed with loss_weights ([sigmoid, sft]: RPO).",
    )
    loss_weights: Annotated[list[PositiveFloat], Field(min_length=1)] | None = Field(
        None, description="Weight of each loss of a loss_type list; default 1 each."
    )
    label_smoothing: Probability = Field(
        0.0, description="epsilon, the assumed label-flip rate, for the robust, exo_pair and aot losses."
    )

    def losses(self) -> list[str]:
        return self.loss_type if isinstance(self.loss_type, list) else [self.loss_type]

    @field_validator("loss_type", mode="before")
    @classmethod
    def _known_losses(cls, value):
        # one message for a loss or a list of losses (the union would give one for each member)
        names = value if isinstance(value, list) else [value]
        if not names:
            raise ValueError("an empty list names no loss. Fix: give one loss, e.g. sigmoid, or a list of them")
        for name in names:
            if name not in typing.get_args(DPO_LOSSES):
                raise ValueError(unknown_dpo_loss(name))
        return value

    def describe(self) -> str:
        return f"beta {self.beta:g}, loss {'+'.join(self.losses())}, {self.epochs:g} epoch(s)"

    @model_validator(mode="after")
    def _losses_read_their_settings(self):
        if self.loss_weights is not None and len(self.loss_weights) != len(self.losses()):
            raise ValueError(
                f"loss_weights has {len(self.loss_weights)} weight(s) for {len(self.losses())} loss(es) in "
                "loss_type. Fix: give one weight per loss"
            )
        if self.label_smoothing and not SMOOTHED_LOSSES & set(self.losses()):
            raise ValueError(
                f"label_smoothing {self.label_smoothing:g} has no effect with loss_type {self.loss_type} in TRL "
                "1.12 (its sigmoid loss ignores it). Fix: use loss_type: robust (robust DPO) for noisy labels, "
                "or remove label_smoothing"
            )
        if "exo_pair" in self.losses() and not self.label_smoothing:
            raise ValueError("loss_type exo_pair needs label_smoothing > 0. Fix: set label_smoothing, e.g. 1.0e-3")
        return self


@stage(version=2)
def dpo(
    *,
    settings: Dpo,
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
    from trl import DPOConfig

    DPOTrainer = trainer_class(Dpo.TRAINER)

    set_seed(seed)
    tokenizer, network, reference, device = load_policy_and_reference(policy, loading, tuning, compute)
    pairs = train_pairs(preferences)
    args = DPOConfig(
        **offline_arguments(settings, compute, out_dir, seed),
        beta=settings.beta,
        loss_type=settings.losses(),
        loss_weights=settings.loss_weights,
        label_smoothing=settings.label_smoothing,
    )
    peft = lora_config(tuning.lora, "CAUSAL_LM") if tuning.lora else None
    trainer = DPOTrainer(
        model=network, ref_model=reference, args=args, train_dataset=pairs, processing_class=tokenizer, peft_config=peft
    )
    trained = trainer.accelerator.unwrap_model(trainer.model)
    tracker = HeldoutCurve.start(curve, tokenizer, device, trained, reference, seed)
    history = fit(trainer, stage="dpo", out_dir=out_dir, learning_rate=settings.learning_rate, curve=tracker)
    save_trained_policy(trainer, trained.eval(), tokenizer, out_dir, str(policy), loading, tuning)
    return {"pairs": len(pairs), "steps": trainer.state.global_step, "final_loss": final_loss(history)}
