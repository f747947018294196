"""Online DPO stage: trl.experimental.online_dpo's OnlineDPOTrainer. For each train prompt the policy, as
it trains, answers twice; the learned reward model ranks the two; a DPO step (against the initial policy
as reference) follows on that pair.

The only module that imports trl.experimental.online_dpo. The reward is training.rewards.LearnedReward:
the reward model read at EOS as it was trained, less a penalty for responses that never end. With LoRA the
reference is the policy with its adapter disabled.
"""

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

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
from ..training.installed import trainer_class
from ..training.rewards import LearnedReward
from ..training.trainer import (
    fit,
    last_logged,
    load_policy_and_reference,
    per_process,
    save_trained_policy,
    trainer_arguments,
)


class OnlineDpo(OnlineMethod):
    """Online DPO (trl.experimental.online_dpo): two responses per prompt from the policy as it trains, ranked
    by the learned reward, then a DPO step on that pair."""

    method: Literal["online_dpo"] = Field("online_dpo", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "online DPO"
    SECTION: ClassVar[str] = "Online DPO ranked by the learned reward; omit to skip."
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("objective/scores", "learned reward of responses"),
        ("objective/kl", "KL to the reference"),
        ("rewards/margins", "implicit reward margin"),
    )
    TRAINER: ClassVar[str] = "trl.experimental.online_dpo:OnlineDPOTrainer"
    IMPLICIT_REWARD: ClassVar[bool] = True

    beta: PositiveFloat = Field(0.1, description="beta: strength of the implicit KL constraint.")
    loss_type: Literal["sigmoid", "ipo"] = Field("sigmoid", description="sigmoid: DPO's loss; ipo: IPO's.")

    def describe(self) -> str:
        return f"beta {self.beta:g}, loss {self.loss_type}, {self.epochs:g} epoch(s)"

    def responses_per_prompt(self) -> int:
        return 2  # online DPO compares two responses a prompt (fixed in TRL 1.12)


@stage(version=1)
def online_dpo(
    *,
    settings: OnlineDpo,
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
    from trl.experimental.online_dpo import OnlineDPOConfig

    OnlineDPOTrainer = trainer_class(OnlineDpo.TRAINER)

    set_seed(seed)
    tokenizer, network, reference, device = load_policy_and_reference(policy, loading, tuning, compute)
    scorer = load_reward(reward_model, tokenizer.pad_token_id, reward_loading, device)
    reward = LearnedReward(scorer, tokenizer, settings.missing_eos_penalty)
    train = read_prompts(prompts, "train")
    args = OnlineDPOConfig(
        **trainer_arguments(compute, out_dir, seed),
        num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=per_process(settings.prompts_per_step, "online_dpo.prompts_per_step"),
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        beta=settings.beta,
        loss_type=settings.loss_type,
        missing_eos_penalty=None,  # LearnedReward applies it
    )
    trainer = OnlineDPOTrainer(
        model=network,
        ref_model=reference,
        reward_funcs=[reward],
        args=args,
        train_dataset=prompt_rows(train, uses_chat_template(tokenizer)),
        processing_class=tokenizer,
        peft_config=lora_config(tuning.lora, "CAUSAL_LM") if tuning.lora else None,
    )
    trained = trainer.accelerator.unwrap_model(trainer.model)
    tracker = HeldoutCurve.start(curve, tokenizer, device, trained, reference, seed, scorer=scorer)
    history = fit(trainer, stage="online_dpo", out_dir=out_dir, learning_rate=settings.learning_rate, curve=tracker)
    save_trained_policy(trainer, trained.eval(), tokenizer, out_dir, str(policy), loading, tuning)
    steps = trainer.state.global_step
    generations = steps * settings.prompts_per_step * settings.responses_per_prompt()
    return {
        "steps": steps,
        "training_generations": generations,
        "reward_model_calls": generations,
        "final_reward": last_logged(history, "objective/scores"),
        "final_kl": last_logged(history, "objective/kl"),
    }
