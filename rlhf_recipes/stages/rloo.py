"""RLOO stage: TRL's RLOOTrainer against the learned reward model. Each train prompt is answered K times;
each response's advantage is its reward (minus beta times its sequence KL to the reference) less the mean
of the other K - 1 (Ahmadian et al. 2024, "Back to Basics").

The reward is training.rewards.LearnedReward: the reward model read at EOS as it was trained, less a
penalty for responses that never end. With LoRA the reference is the policy with its adapter disabled;
with full fine-tuning TRL loads it from the policy's directory.
"""

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from ..config.methods import NonNegativeFloat, OnlineMethod
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
from ..training.trainer import fit, last_logged, load_policy_and_reference, online_arguments, save_trained_policy


class Rloo(OnlineMethod):
    """RLOO (TRL's RLOOTrainer): K responses per prompt scored by the learned reward, each baselined by the
    mean of the other K - 1; the KL to the reference is subtracted from the reward."""

    method: Literal["rloo"] = Field("rloo", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "RLOO"
    SECTION: ClassVar[str] = "RLOO against the learned reward; omit to skip."
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("reward", "learned reward of responses"),
        ("kl", "KL to the reference (per token)"),
        ("completions/mean_length", "response length (tokens)"),
    )
    TRAINER: ClassVar[str] = "trl:RLOOTrainer"

    beta: NonNegativeFloat = Field(0.05, description="beta of the sequence-level penalty -beta*KL in the reward.")
    generations_per_prompt: Annotated[int, Field(ge=2)] = Field(4, description="K responses per prompt (>= 2).")

    def describe(self) -> str:
        return f"beta {self.beta:g}, K {self.generations_per_prompt}, {self.epochs:g} epoch(s)"


@stage(version=1)
def rloo(
    *,
    settings: Rloo,
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
    from trl import RLOOConfig

    RLOOTrainer = trainer_class(Rloo.TRAINER)

    set_seed(seed)
    tokenizer, network, _, device = load_policy_and_reference(policy, loading, tuning, compute, reference=False)
    scorer = load_reward(reward_model, tokenizer.pad_token_id, reward_loading, device)
    reward = LearnedReward(scorer, tokenizer, settings.missing_eos_penalty)
    train = read_prompts(prompts, "train")
    args = RLOOConfig(
        **online_arguments(settings, compute, out_dir, seed, settings.generations_per_prompt),
        beta=settings.beta,
        model_init_kwargs={"dtype": loading.dtype},  # the reference TRL loads, for full fine-tuning
    )
    trainer = RLOOTrainer(
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
    history = fit(trainer, stage="rloo", out_dir=out_dir, learning_rate=settings.learning_rate, curve=tracker)
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
