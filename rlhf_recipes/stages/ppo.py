"""PPO stage: the policy maximises the learned reward minus a per-token KL penalty to the initial policy.

The only module that imports PPO: it lives in trl.experimental.ppo, which TRL 1.13 deleted
(hence the pin trl<1.13). The value model starts from the reward model, as in TRL's examples.
With LoRA, the reference is the policy with its adapter disabled: no second copy in memory.
"""

from pathlib import Path

from ..run.distributed import is_main
from ..generation.formatting import prompt_ids
from ..models.loading import device_for, load_policy, load_reward_model, load_tokenizer, lora_config, save_policy
from ..config.schema import Compute, Model, Ppo, Reward
from .common import per_process, quiet, save_logs, save_sharded, shards_parameters, trainer_arguments
from .curves import CurveSpec, HeldoutCurve
from .health import FiniteTraining


def train_ppo(
    config: Ppo,
    settings: Model,
    reward_config: Reward,
    compute: Compute,
    policy: str,
    reward_model: str,
    train: list[str],
    out_dir: Path,
    seed: int,
    curve: CurveSpec | None = None,
):
    """Run PPO on the train prompts against `reward_model`; save the tuned policy (or adapter) to out_dir.

    With config.eval_every_updates and a CurveSpec, also write the held-out curve to out_dir/curve.json.
    """
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import set_seed
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    set_seed(seed)
    device = device_for(compute)
    tokenizer = load_tokenizer(policy, settings.trust_remote_code)
    model = load_policy(policy, settings, device)
    reference = None if settings.lora else load_policy(policy, settings, device)
    reward = load_reward_model(reward_model, tokenizer.pad_token_id, settings, device, reward_config.load_in_4bit)
    value = load_reward_model(reward_model, tokenizer.pad_token_id, settings, device, reward_config.load_in_4bit)
    if reward_config.lora:  # adapt the value model's backbone; its score head stays fully trainable
        value.model = get_peft_model(value.model, lora_config(reward_config.lora, "FEATURE_EXTRACTION"))
    rollouts_here = per_process(config.rollouts_per_update, "ppo.rollouts_per_update")
    args = PPOConfig(
        **(trainer_arguments(compute, out_dir, seed) | {"save_strategy": "no"}),  # TRL's PPO cannot resume
        learning_rate=config.learning_rate,
        total_episodes=config.total_episodes or len(train),
        # TRL steps the optimizer once per gradient_accumulation_steps micro-batches, across mini-batch
        # boundaries; so one rollout batch per device, no accumulation, and PPO's minibatches as
        # num_mini_batches give rollouts_per_update / mini_batch_size optimizer steps per PPO epoch.
        # With several processes each takes an equal share of every rollout batch and of every minibatch.
        per_device_train_batch_size=rollouts_here,
        gradient_accumulation_steps=1,
        num_mini_batches=config.rollouts_per_update // config.mini_batch_size,
        local_rollout_forward_batch_size=rollouts_here,
        num_ppo_epochs=config.ppo_epochs,
        kl_coef=config.kl_coef,
        kl_estimator=config.kl_estimator,
        cliprange=config.cliprange,
        vf_coef=config.vf_coef,
        cliprange_value=config.cliprange_value,
        gamma=config.gamma,
        lam=config.lam,
        whiten_rewards=config.whiten_rewards,
        response_length=config.max_new_tokens,
        temperature=config.temperature,
        missing_eos_penalty=config.missing_eos_penalty,
        stop_token="eos",
        num_sample_generations=0,
    )
    dataset = Dataset.from_dict({"input_ids": [prompt_ids(tokenizer, prompt) for prompt in train]})
    peft = lora_config(settings.lora, "CAUSAL_LM") if settings.lora else None
    if peft is not None and settings.load_in_4bit:
        # Given a peft_config, TRL's PPO casts every norm of a 4-bit policy to float32, and its rollout
        # generation then feeds float32 into the bfloat16 head and fails; so wrap the policy here.
        model, peft = get_peft_model(model, peft), None
    trainer = PPOTrainer(
        args=args,
        processing_class=tokenizer,
        model=model,
        ref_model=reference,
        reward_model=reward,
        value_model=value,
        train_dataset=dataset,
        eval_dataset=dataset.select(range(min(len(dataset), config.mini_batch_size))),  # unused: no sample tables
        peft_config=peft,
    )
    quiet(trainer)
    trainer.accelerator.print = _silent  # PPOTrainer's one print is a "===training policy===" banner on stdout
    trainer.add_callback(FiniteTraining("ppo", config.learning_rate))
    tracker = None
    if config.eval_every_updates and curve is not None:
        tracker = HeldoutCurve(config.eval_every_updates, curve.evaluation, curve.gold, tokenizer, reward, curve.heldout, seed)
        trainer.add_callback(tracker.attach(trainer.accelerator.unwrap_model(trainer.model).policy, reference, out_dir / "curve.json"))
    trainer.train()
    trained = trainer.accelerator.unwrap_model(trainer.model).policy.eval()
    if shards_parameters(trainer):  # TRL's PPO save_model saves the policy alone
        save_sharded(trainer, tokenizer, out_dir)
    elif is_main():
        save_policy(trained, tokenizer, out_dir, policy, settings, merged=settings.save_merged)
    history = save_logs(trainer, out_dir)
    last = history[-1] if history else {}
    return {"updates": trainer.state.global_step, "final_score": last.get("objective/scores"), "final_kl": last.get("objective/kl")}


def _silent(*args, **kwargs) -> None:
    pass
