"""PPO stage: the policy maximises the learned reward minus a per-token KL penalty to the initial policy.

The only module that imports PPO: it lives in trl.experimental.ppo, which TRL 1.13 deleted
(hence the pin trl<1.13). The value model starts from the reward model, as in TRL's examples.
"""

from pathlib import Path

from ..models import load_policy, load_reward_model, load_tokenizer
from ..recipe import Compute, Ppo
from .common import quiet, save_logs, trainer_arguments


def train_ppo(config: Ppo, compute: Compute, policy: str, reward_model: str, train: list[str], out_dir: Path, seed: int):
    """Run PPO on the train prompts against `reward_model`; save the tuned policy to out_dir."""
    from datasets import Dataset
    from transformers import set_seed
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    set_seed(seed)
    tokenizer = load_tokenizer(policy)
    model = load_policy(policy)
    reference = load_policy(policy)
    reward = load_reward_model(reward_model, tokenizer.pad_token_id)
    value = load_reward_model(reward_model, tokenizer.pad_token_id)
    args = PPOConfig(
        **trainer_arguments(compute, out_dir, seed),
        learning_rate=config.learning_rate,
        total_episodes=config.total_episodes or len(train),
        per_device_train_batch_size=config.micro_batch_size,
        gradient_accumulation_steps=config.rollouts_per_update // config.micro_batch_size,
        num_mini_batches=1,
        local_rollout_forward_batch_size=config.rollouts_per_update,
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
    dataset = Dataset.from_dict({"input_ids": [tokenizer(prompt)["input_ids"] for prompt in train]})
    trainer = PPOTrainer(
        args=args,
        processing_class=tokenizer,
        model=model,
        ref_model=reference,
        reward_model=reward,
        value_model=value,
        train_dataset=dataset,
        eval_dataset=dataset.select(range(min(len(dataset), config.micro_batch_size))),  # unused: no sample tables
    )
    quiet(trainer)
    trainer.train()
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    history = save_logs(trainer, out_dir)
    last = history[-1] if history else {}
    return {
        "updates": trainer.state.global_step,
        "final_score": last.get("objective/scores"),
        "final_kl": last.get("objective/kl"),
    }
