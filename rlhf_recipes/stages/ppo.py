"""PPO stage: the policy maximises the learned reward minus a per-token KL penalty to the initial policy.

The only module that imports PPO: it lives in trl.experimental.ppo, which TRL 1.13 deleted
(hence the pin trl<1.13). The value model starts from the reward model, as in TRL's examples.
With LoRA, the reference is the policy with its adapter disabled: no second copy in memory.
"""

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from ..config.base import Lora, PositiveFloat, PositiveInt
from ..config.methods import Method, NonNegativeFloat
from ..config.schema import Compute
from ..errors import RecipeError
from ..generation.formatting import prompt_ids
from ..models.ensemble import load_reward, member_paths
from ..models.loading import Loading, Tuning, device_for, load_policy, load_reward_model, load_tokenizer, lora_config
from ..runtime.prompt_files import read_prompts
from ..runtime.stage import stage
from ..training.curve import Curve, HeldoutCurve
from ..training.installed import trainer_class
from ..training.trainer import fit, last_logged, per_process, save_trained_policy, trainer_arguments


class Ppo(Method):
    """PPO against the learned reward with a per-token KL penalty (trl.experimental.ppo.PPOTrainer).

    Defaults follow Huang et al. 2024 ("The N+ implementation details of RLHF with PPO"): reward and
    advantage whitening, a penalty for responses that never end, EOS as the stop token, the value model
    started from the reward model, Adam epsilon 1e-5, 64 rollouts an update.
    """

    method: Literal["ppo"] = Field("ppo", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "PPO"
    SECTION: ClassVar[str] = "PPO against the learned reward; omit to skip."
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("objective/scores", "learned reward of rollouts"),
        ("objective/kl", "KL of rollouts (nats)"),
        ("loss/value_avg", "value loss"),
        ("policy/clipfrac_avg", "clipped fraction"),
    )
    TRAINER: ClassVar[str] = "trl.experimental.ppo:PPOTrainer"
    INSTALL: ClassVar[str] = "rlhf-recipes[ppo]"  # the extra that narrows TRL to the releases with PPO
    CURVE_KEY: ClassVar[str] = "eval_every_updates"
    BATCH_KEYS: ClassVar[tuple[str, ...]] = ("rollouts_per_update", "mini_batch_size")
    READS: ClassVar[frozenset[str]] = frozenset({"reward_model"})
    VALUE_MODEL: ClassVar[bool] = True
    STEP_PROMPTS: ClassVar[tuple[str, str]] = ("rollouts_per_update", "each update answers")

    learning_rate: PositiveFloat = Field(3e-6, description="AdamW learning rate (linear decay).")
    total_episodes: PositiveInt | None = Field(
        None, description="Prompts rolled out in all; default: one pass over the train prompts."
    )
    rollouts_per_update: PositiveInt = Field(64, description="Responses generated and scored per PPO update.")
    mini_batch_size: PositiveInt = Field(
        8, description="Responses per optimizer step; rollouts_per_update / mini_batch_size steps per PPO epoch."
    )
    ppo_epochs: PositiveInt = Field(4, description="Optimisation passes over each batch of rollouts.")
    kl_coef: NonNegativeFloat = Field(0.05, description="beta of the per-token penalty -beta*KL.")
    kl_estimator: Literal["k1", "k3"] = Field("k1", description="Per-token KL estimator in the penalty.")
    cliprange: PositiveFloat = Field(0.2, description="epsilon of the clipped policy ratio.")
    vf_coef: PositiveFloat = Field(0.1, description="Weight of the value loss.")
    cliprange_value: PositiveFloat = Field(0.2, description="Clip range of the value prediction.")
    gamma: Annotated[float, Field(gt=0, le=1)] = Field(1.0, description="Discount factor.")
    lam: Annotated[float, Field(ge=0, le=1)] = Field(0.95, description="lambda of GAE.")
    whiten_rewards: bool = Field(True, description="Normalise rewards per batch (needs mini_batch_size >= 8).")
    max_new_tokens: PositiveInt = Field(48, description="Longest rollout response in tokens.")
    temperature: PositiveFloat = Field(1.0, description="Rollout sampling temperature (and of the KL penalty).")
    missing_eos_penalty: NonNegativeFloat | None = Field(
        1.0, description="Subtracted from the score of a response that never ends; null for none."
    )
    eval_every_updates: PositiveInt | None = Field(
        None, description="Evaluate on held-out prompts every this many PPO updates (training curve); off if unset."
    )

    @classmethod
    def install_fix(cls) -> str:
        return (
            f"TRL 1.13 deleted PPO: pip install '{cls.INSTALL}' (the extra narrows TRL to 1.10-1.12), "
            "or leave out the ppo section and its variants"
        )

    def describe(self) -> str:
        return f"kl_coef {self.kl_coef:g}, {self.total_episodes or 'one pass of'} episodes"

    def memory_batch(self, prompt_tokens: int) -> tuple[int, int]:
        return self.mini_batch_size, prompt_tokens + self.max_new_tokens

    @model_validator(mode="after")
    def _batches_divide(self):
        if self.rollouts_per_update % self.mini_batch_size:
            raise ValueError(
                f"rollouts_per_update ({self.rollouts_per_update}) must be a multiple of "
                f"mini_batch_size ({self.mini_batch_size}). Fix: change one of them"
            )
        if self.whiten_rewards and self.mini_batch_size < 8:
            raise ValueError(
                f"whiten_rewards needs mini_batch_size >= 8 to estimate a variance, got {self.mini_batch_size}. "
                "Fix: raise mini_batch_size or set whiten_rewards: false"
            )
        if self.total_episodes is not None and self.total_episodes < self.rollouts_per_update:
            raise ValueError(
                f"total_episodes ({self.total_episodes}) is less than one update of "
                f"rollouts_per_update ({self.rollouts_per_update}). Fix: raise total_episodes"
            )
        return self


@stage(version=2)
def ppo(
    *,
    settings: Ppo,
    loading: Loading,
    tuning: Tuning,
    compute: Compute,
    policy: Path | str,
    reward_model: Path,
    reward_loading: Loading,
    value_model_lora: Lora | None,
    prompts: Path,
    curve: Curve | None,
    seed: int,
    out_dir: Path,
):
    """Run PPO on the train prompts against the reward model; save the tuned policy (or adapter) to out_dir.

    reward_model: the reward_model stage's output (an ensemble: PPO is rewarded with its aggregate), also the
    value model's start (its member 0; with LoRA on its backbone when value_model_lora is set); prompts: the
    prompts stage's output. With a curve, also write the held-out curve to out_dir/curve.json.
    """
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import set_seed
    from trl.experimental.ppo import PPOConfig

    PPOTrainer = trainer_class(Ppo.TRAINER)

    base = str(policy)
    set_seed(seed)
    device = device_for(compute)
    tokenizer = load_tokenizer(base, loading.trust_remote_code)
    network = load_policy(base, loading, device)
    reference = None if tuning.lora else load_policy(base, loading, device)
    reward = load_reward(reward_model, tokenizer.pad_token_id, reward_loading, device)  # an ensemble's aggregate
    value = load_reward_model(str(member_paths(reward_model)[0]), tokenizer.pad_token_id, reward_loading, device)
    if value_model_lora:  # adapt the value model's backbone; its score head stays fully trainable
        value.model = get_peft_model(value.model, lora_config(value_model_lora, "FEATURE_EXTRACTION"))
    train = read_prompts(prompts, "train")
    rollouts_here = per_process(settings.rollouts_per_update, "ppo.rollouts_per_update")
    too_few = settings.too_few_train_prompts("ppo.rollouts_per_update", len(train))  # checked at validation too,
    if too_few:  # but a hub prompt dataset is first read here; TRL's PPO would loop forever on an empty loader
        raise RecipeError(too_few)
    args = PPOConfig(
        **(trainer_arguments(compute, out_dir, seed) | {"save_strategy": "no"}),  # TRL's PPO cannot resume
        learning_rate=settings.learning_rate,
        total_episodes=settings.total_episodes or len(train),
        # TRL steps the optimizer once per gradient_accumulation_steps micro-batches, across mini-batch
        # boundaries; so one rollout batch per device, no accumulation, and PPO's minibatches as
        # num_mini_batches give rollouts_per_update / mini_batch_size optimizer steps per PPO epoch.
        # With several processes each takes an equal share of every rollout batch and of every minibatch.
        per_device_train_batch_size=rollouts_here,
        gradient_accumulation_steps=1,
        num_mini_batches=settings.rollouts_per_update // settings.mini_batch_size,
        local_rollout_forward_batch_size=rollouts_here,
        num_ppo_epochs=settings.ppo_epochs,
        kl_coef=settings.kl_coef,
        kl_estimator=settings.kl_estimator,
        cliprange=settings.cliprange,
        vf_coef=settings.vf_coef,
        cliprange_value=settings.cliprange_value,
        gamma=settings.gamma,
        lam=settings.lam,
        whiten_rewards=settings.whiten_rewards,
        response_length=settings.max_new_tokens,
        temperature=settings.temperature,
        missing_eos_penalty=settings.missing_eos_penalty,
        stop_token="eos",
        adam_epsilon=1e-5,  # Huang et al. 2024: the reference implementation's Adam epsilon
        num_sample_generations=0,
    )
    dataset = Dataset.from_dict({"input_ids": [prompt_ids(tokenizer, prompt) for prompt in train]})
    peft = lora_config(tuning.lora, "CAUSAL_LM") if tuning.lora else None
    if peft is not None and loading.load_in_4bit:
        # Given a peft_config, TRL's PPO casts every norm of a 4-bit policy to float32, and its rollout
        # generation then feeds float32 into the bfloat16 head and fails; so wrap the policy here.
        network, peft = get_peft_model(network, peft), None
    trainer = PPOTrainer(
        args=args,
        processing_class=tokenizer,
        model=network,
        ref_model=reference,
        reward_model=reward,
        value_model=value,
        train_dataset=dataset,
        eval_dataset=dataset.select(range(min(len(dataset), settings.mini_batch_size))),  # unused: no sample tables
        peft_config=peft,
    )
    trainer.accelerator.print = _silent  # PPOTrainer's one print is a "===training policy===" banner on stdout
    trained = trainer.accelerator.unwrap_model(trainer.model).policy
    tracker = HeldoutCurve.start(curve, tokenizer, device, trained, reference, seed, scorer=reward)
    history = fit(
        trainer, stage="ppo", out_dir=out_dir, learning_rate=settings.learning_rate, curve=tracker, resumable=False
    )
    save_trained_policy(trainer, trained.eval(), tokenizer, out_dir, base, loading, tuning)
    updates, episodes = trainer.state.global_step, last_logged(history, "episode") or 0
    return {
        "updates": updates,
        "steps": updates * settings.ppo_epochs * (settings.rollouts_per_update // settings.mini_batch_size),
        "training_generations": episodes,
        "reward_model_calls": episodes,
        "final_score": last_logged(history, "objective/scores"),
        "final_kl": last_logged(history, "objective/kl"),
    }


def _silent(*args, **kwargs) -> None:
    pass
