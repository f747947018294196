"""PPO stage: the policy maximises the learned reward minus a per-token KL penalty to the initial policy.

The only module that imports PPO: it lives in trl.experimental.ppo, which TRL 1.13 deleted
(hence the pin trl<1.13). The value model starts from the reward model, as in TRL's examples.
With LoRA, the reference is the policy with its adapter disabled: no second copy in memory.
"""

from pathlib import Path

from ..config.base import Lora
from ..config.methods import Ppo
from ..config.schema import Compute
from ..errors import RecipeError
from ..generation.formatting import prompt_ids
from ..models.loading import Loading, Tuning, device_for, load_policy, load_reward_model, load_tokenizer, lora_config
from ..runtime.prompt_files import read_prompts
from ..runtime.stage import stage
from ..training.curve import Curve, HeldoutCurve
from ..training.trainer import fit, last_logged, per_process, save_trained_policy, trainer_arguments


@stage(version=2)
def ppo(
    *,
    ppo: Ppo,
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

    reward_model: the reward_model stage's output, also the value model's start (with LoRA on its backbone
    when value_model_lora is set); prompts: the prompts stage's output. With a curve, also write the
    held-out curve to out_dir/curve.json.
    """
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import set_seed
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    base = str(policy)
    set_seed(seed)
    device = device_for(compute)
    tokenizer = load_tokenizer(base, loading.trust_remote_code)
    network = load_policy(base, loading, device)
    reference = None if tuning.lora else load_policy(base, loading, device)
    reward = load_reward_model(str(reward_model), tokenizer.pad_token_id, reward_loading, device)
    value = load_reward_model(str(reward_model), tokenizer.pad_token_id, reward_loading, device)
    if value_model_lora:  # adapt the value model's backbone; its score head stays fully trainable
        value.model = get_peft_model(value.model, lora_config(value_model_lora, "FEATURE_EXTRACTION"))
    train = read_prompts(prompts, "train")
    rollouts_here = per_process(ppo.rollouts_per_update, "ppo.rollouts_per_update")
    too_few = ppo.too_few_train_prompts("ppo.rollouts_per_update", len(train))  # checked at validation too,
    if too_few:  # but a hub prompt dataset is first read here; TRL's PPO would loop forever on an empty loader
        raise RecipeError(too_few)
    args = PPOConfig(
        **(trainer_arguments(compute, out_dir, seed) | {"save_strategy": "no"}),  # TRL's PPO cannot resume
        learning_rate=ppo.learning_rate,
        total_episodes=ppo.total_episodes or len(train),
        # TRL steps the optimizer once per gradient_accumulation_steps micro-batches, across mini-batch
        # boundaries; so one rollout batch per device, no accumulation, and PPO's minibatches as
        # num_mini_batches give rollouts_per_update / mini_batch_size optimizer steps per PPO epoch.
        # With several processes each takes an equal share of every rollout batch and of every minibatch.
        per_device_train_batch_size=rollouts_here,
        gradient_accumulation_steps=1,
        num_mini_batches=ppo.rollouts_per_update // ppo.mini_batch_size,
        local_rollout_forward_batch_size=rollouts_here,
        num_ppo_epochs=ppo.ppo_epochs,
        kl_coef=ppo.kl_coef,
        kl_estimator=ppo.kl_estimator,
        cliprange=ppo.cliprange,
        vf_coef=ppo.vf_coef,
        cliprange_value=ppo.cliprange_value,
        gamma=ppo.gamma,
        lam=ppo.lam,
        whiten_rewards=ppo.whiten_rewards,
        response_length=ppo.max_new_tokens,
        temperature=ppo.temperature,
        missing_eos_penalty=ppo.missing_eos_penalty,
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
        eval_dataset=dataset.select(range(min(len(dataset), ppo.mini_batch_size))),  # unused: no sample tables
        peft_config=peft,
    )
    trainer.accelerator.print = _silent  # PPOTrainer's one print is a "===training policy===" banner on stdout
    trained = trainer.accelerator.unwrap_model(trainer.model).policy
    tracker = HeldoutCurve.start(curve, tokenizer, device, trained, reference, seed, scorer=reward)
    history = fit(
        trainer, stage="ppo", out_dir=out_dir, learning_rate=ppo.learning_rate, curve=tracker, resumable=False
    )
    save_trained_policy(trainer, trained.eval(), tokenizer, out_dir, base, loading, tuning)
    updates, episodes = trainer.state.global_step, last_logged(history, "episode") or 0
    return {
        "updates": updates,
        "steps": updates * ppo.ppo_epochs * (ppo.rollouts_per_update // ppo.mini_batch_size),
        "training_generations": episodes,
        "reward_model_calls": episodes,
        "final_score": last_logged(history, "objective/scores"),
        "final_kl": last_logged(history, "objective/kl"),
    }


def _silent(*args, **kwargs) -> None:
    pass
