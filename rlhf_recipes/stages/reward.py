"""Reward stage: a Bradley-Terry reward model, P(a > b) = sigmoid(r(a) - r(b)), with TRL's RewardTrainer.

It starts from the policy's weights with a new scalar head and keeps the policy's tokenizer,
so that PPO can score the policy's token ids directly.
"""

import json
from pathlib import Path

from ..models import load_reward_model, load_tokenizer
from ..recipe import Compute, Reward
from ..scoring import reward_scores
from .common import quiet, save_logs, trainer_arguments


def pairwise_accuracy(reward_model, tokenizer, pairs, batch_size: int) -> dict:
    """How often the reward model scores chosen above rejected, against the gold and the noisy labels.

    pairs: rows with prompt, chosen, rejected and gold_agrees (False where noise flipped the label).
    """
    chosen = reward_scores(reward_model, tokenizer, pairs["prompt"], pairs["chosen"], batch_size)
    rejected = reward_scores(reward_model, tokenizer, pairs["prompt"], pairs["rejected"], batch_size)
    agrees_with_label = [c > r for c, r in zip(chosen, rejected)]
    agrees_with_gold = [a == g for a, g in zip(agrees_with_label, pairs["gold_agrees"])]
    return {
        "accuracy_vs_gold": sum(agrees_with_gold) / len(pairs),
        "accuracy_vs_labels": sum(agrees_with_label) / len(pairs),
        "pairs": len(pairs),
    }


def train_reward_model(config: Reward, compute: Compute, policy: str, preferences_dir: Path, out_dir: Path, seed: int):
    """Train on the train pairs, measure held-out pairwise accuracy, save model and metrics to out_dir."""
    from datasets import load_from_disk
    from transformers import set_seed
    from trl import RewardConfig, RewardTrainer

    set_seed(seed)  # the new score head is drawn from this seed
    tokenizer = load_tokenizer(policy)
    model = load_reward_model(policy, tokenizer.pad_token_id)
    pairs = load_from_disk(str(preferences_dir / "dataset"))
    args = RewardConfig(
        **trainer_arguments(compute, out_dir, seed),
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        per_device_train_batch_size=config.batch_size,
        max_length=config.max_length_tokens,
    )
    train = pairs["train"].select_columns(["prompt", "chosen", "rejected"])
    trainer = RewardTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
    quiet(trainer)
    trainer.train()
    model.eval()
    metrics = {
        "train": pairwise_accuracy(model, tokenizer, pairs["train"], config.batch_size),
        "heldout": pairwise_accuracy(model, tokenizer, pairs["heldout"], config.batch_size),
        "steps": trainer.state.global_step,
    }
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    save_logs(trainer, out_dir)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
