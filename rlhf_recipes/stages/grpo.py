"""GRPO stage: TRL's GRPOTrainer against the learned reward model. Each train prompt is answered K times;
a response's advantage is its reward less its group's mean (divided by the group's standard deviation with
scale_rewards: group), and beta times a per-token KL estimate (k3) to the reference joins the loss.

TRL defaults beta to 0, which loads no reference and tracks no KL; the section defaults it above 0. The
reward is training.rewards.LearnedReward: the reward model read at EOS as it was trained, less a penalty
for responses that never end. With LoRA the reference is the policy with its adapter disabled; with full
fine-tuning TRL loads it from the policy's directory.
"""

from importlib import metadata
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from ..config.base import PositiveFloat
from ..config.methods import OnlineMethod
from ..config.schema import Compute
from ..generation.formatting import uses_chat_template
from ..models.ensemble import load_reward
from ..models.loading import Loading, Tuning, lora_config
from ..runtime.prompt_files import read_prompts
from ..runtime.stage import stage
from ..training.curve import Curve, HeldoutCurve
from ..training.data import prompt_rows
from ..training.installed import module_mentions, trainer_class
from ..training.rewards import LearnedReward
from ..training.trainer import fit, last_logged, load_policy_and_reference, online_arguments, save_trained_policy


class Grpo(OnlineMethod):
    """GRPO (TRL's GRPOTrainer): K responses per prompt, advantages normalised within each prompt's group,
    a per-token KL term in the loss."""

    method: Literal["grpo"] = Field("grpo", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "GRPO"
    SECTION: ClassVar[str] = "GRPO against the learned reward; omit to skip."
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("reward", "learned reward of responses"),
        ("kl", "KL to the reference (per token)"),
        ("completions/mean_length", "response length (tokens)"),
    )
    TRAINER: ClassVar[str] = "trl:GRPOTrainer"

    beta: PositiveFloat = Field(
        0.04, description="beta of the per-token KL term (TRL's default 0 would load no reference and track no KL)."
    )
    generations_per_prompt: Annotated[int, Field(ge=2)] = Field(4, description="K responses per prompt (>= 2).")
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo", "cispo", "sapo", "luspo", "vespo"] = Field(
        "dapo",
        description="The policy loss: grpo (token losses averaged per sequence), dapo, dr_grpo, bnpo (other "
        "averages); cispo (clipped importance weights), sapo (a soft gate instead of clipping), luspo "
        "(sequence-level, needs importance_sampling_level sequence), vespo; the last four where the installed "
        "TRL has them.",
    )
    importance_sampling_level: Literal["token", "sequence"] = Field(
        "token",
        description="Importance ratios per token, or one per sequence (GSPO: sequence with loss_type grpo).",
        json_schema_extra={"added_later": True},
    )
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="Divide advantages by the reward's std in the group, the batch, or not at all."
    )

    @model_validator(mode="after")
    def _loss_fits_importance_level(self):
        level, loss = self.importance_sampling_level, self.loss_type
        if loss == "luspo" and level != "sequence":
            raise ValueError("loss_type luspo is a sequence-level loss. Fix: set importance_sampling_level: sequence")
        if loss == "vespo" and level != "token":
            raise ValueError(
                "loss_type vespo computes its sequence weights itself. Fix: set importance_sampling_level: token"
            )
        if level == "sequence" and loss in ("dapo", "dr_grpo", "bnpo", "cispo"):
            raise ValueError(
                f"importance_sampling_level sequence with loss_type {loss} weights each answer by its length "
                "instead of optimizing the sequence-level objective. Fix: set loss_type: grpo (GSPO), or luspo"
            )
        return self

    def check_installed(self) -> None:
        if not module_mentions("trl.trainer.grpo_config", self.loss_type):
            raise ValueError(
                f"loss_type {self.loss_type}: the installed TRL ({metadata.version('trl')}) has no such GRPO loss. "
                f"Fix: pip install '{self.INSTALL}', or another loss_type"
            )

    def describe(self) -> str:
        return f"beta {self.beta:g}, K {self.generations_per_prompt}, {self.epochs:g} epoch(s)"


@stage(version=1)
def grpo(
    *,
    settings: Grpo,
    loading: Loading,
    tuning: Tuning,
    compute: Compute,
    policy: Path | str,
    prompts: Path,
    reward_model: Path,
    reward_loading: Loading,
    curve: Curve | None,
    seed: int,
    out_dir: Path,
):
    """Train on the train prompts (the prompts stage's output) against the reward_model stage's model; save
    the policy (or adapter) to out_dir, and with a curve the held-out curve to out_dir/curve.json."""
    from transformers import set_seed
    from trl import GRPOConfig

    GRPOTrainer = trainer_class(Grpo.TRAINER)

    set_seed(seed)
    tokenizer, network, _, device = load_policy_and_reference(policy, loading, tuning, compute, reference=False)
    scorer = load_reward(reward_model, tokenizer.pad_token_id, reward_loading, device)
    reward = LearnedReward(scorer, tokenizer, settings.missing_eos_penalty)
    train = read_prompts(prompts, "train")
    args = GRPOConfig(
        **online_arguments(settings, compute, out_dir, seed, settings.generations_per_prompt),
        beta=settings.beta,
        loss_type=settings.loss_type,
        importance_sampling_level=settings.importance_sampling_level,
        scale_rewards=settings.scale_rewards,
        model_init_kwargs={"dtype": loading.dtype},  # the reference TRL loads, for full fine-tuning
    )
    trainer = GRPOTrainer(
        model=network,
        reward_funcs=reward,
        args=args,
        train_dataset=prompt_rows(train, uses_chat_template(tokenizer)),
        processing_class=tokenizer,
        peft_config=lora_config(tuning.lora, "CAUSAL_LM") if tuning.lora else None,
    )
    trained = trainer.accelerator.unwrap_model(trainer.model)
    reference = trainer.accelerator.unwrap_model(trainer.ref_model) if trainer.ref_model is not None else None
    tracker = HeldoutCurve.start(curve, tokenizer, device, trained, reference, seed, scorer=scorer)
    history = fit(trainer, stage="grpo", out_dir=out_dir, learning_rate=settings.learning_rate, curve=tracker)
    save_trained_policy(trainer, trained.eval(), tokenizer, out_dir, str(policy), loading, tuning)
    steps = trainer.state.global_step
    generations = steps * settings.prompts_per_step * settings.generations_per_prompt
    return {
        "steps": steps,
        "training_generations": generations,
        "reward_model_calls": generations,
        "final_reward": last_logged(history, "reward"),
        "final_kl": last_logged(history, "kl"),
    }
