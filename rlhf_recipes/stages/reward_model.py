"""Reward stage: a Bradley-Terry reward model, P(a > b) = sigmoid(r(a) - r(b)), with TRL's RewardTrainer.

It starts from the policy's weights with a new scalar head and keeps the policy's tokenizer, and
it is trained on exactly the tokens PPO will hand it (formatting.scored_ids), read at the EOS.
"""

import json
from pathlib import Path

from ..config.schema import Compute, RewardModel
from ..generation.formatting import scored_ids, text_of
from ..generation.scoring import reward_scores
from ..metrics import pair_accuracies
from ..models.loading import Loading, device_for, load_reward_model, load_tokenizer, lora_config, merge_adapter
from ..runtime.distributed import barrier, is_main
from ..runtime.stage import stage
from ..training.trainer import fit, per_process, save_sharded, shards_parameters, trainer_arguments


def pairwise_accuracy(reward_model, tokenizer, pairs, batch_size: int) -> dict:
    """metrics.pair_accuracies of the reward model on preference pairs (vs gold, proxy and noisy labels)."""
    prompts = [text_of(p) for p in pairs["prompt"]]
    chosen = reward_scores(reward_model, tokenizer, prompts, [text_of(c) for c in pairs["chosen"]], batch_size)
    rejected = reward_scores(reward_model, tokenizer, prompts, [text_of(r) for r in pairs["rejected"]], batch_size)
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    return pair_accuracies(margins, pairs["chosen_gold"], pairs["rejected_gold"], pairs["noise_free"])


def train_sample(train, size: int, seed: int):
    """A fixed random sample of `size` training pairs (all of them if fewer): training accuracy, the
    overfitting check beside held-out accuracy, is then as precise as held-out accuracy and costs no more
    to measure, instead of growing with the training set."""
    return train if len(train) <= size else train.shuffle(seed=seed, keep_in_memory=True).select(range(size))


def score_heldout_responses(reward_model, tokenizer, preferences_dir: Path, out: Path, batch_size: int) -> None:
    """Reward-model scores of every held-out sampled response, next to its gold score and length, as jsonl."""
    with open(preferences_dir / "scored_responses.jsonl", encoding="utf-8") as rows:
        heldout = [row for row in map(json.loads, rows) if row["split"] == "heldout"]
    scores = reward_scores(
        reward_model, tokenizer, [r["prompt"] for r in heldout], [r["response"] for r in heldout], batch_size
    )
    if not is_main():
        return
    with open(out, "w", encoding="utf-8") as handle:
        for row, score in zip(heldout, scores, strict=True):
            handle.write(json.dumps(row | {"reward_model": score}, ensure_ascii=False) + "\n")


def tokenized_pairs(tokenizer, pairs):
    """The pairs as RewardTrainer's pre-tokenized columns chosen_ids and rejected_ids."""
    from datasets import Dataset

    rows = []
    for pair in pairs:
        prompt = text_of(pair["prompt"])
        rows.append(
            {
                "chosen_ids": scored_ids(tokenizer, prompt, text_of(pair["chosen"])),
                "rejected_ids": scored_ids(tokenizer, prompt, text_of(pair["rejected"])),
            }
        )
    return Dataset.from_list(rows)


def bootstrap_resample(train, seed: int):
    """As many training pairs as there are, drawn with replacement (an ensemble member's own data)."""
    import numpy as np

    return train.select(np.random.default_rng(seed).integers(0, len(train), len(train)).tolist())


@stage(version=1, added_later=("resample_seed",))
def reward_model(
    *,
    settings: RewardModel,
    loading: Loading,
    compute: Compute,
    policy: Path | str,
    preferences: Path,
    seed: int,
    out_dir: Path,
    resample_seed: int | None = None,
):
    """Train on the train pairs, measure held-out pairwise accuracy, save model and metrics to out_dir.

    preferences: the preferences stage's output; loading: the model section's dtype and remote-code
    setting, with reward_model.load_in_4bit. With LoRA the adapter (and score head) go to
    out_dir/adapter and full merged weights to out_dir, which is what later stages load. resample_seed: train on
    a bootstrap resample of the train pairs drawn with it (an ensemble member's), not on the pairs themselves.
    """
    from datasets import load_from_disk
    from transformers import set_seed
    from trl import RewardConfig, RewardTrainer

    base = str(policy)
    set_seed(seed)  # the new score head is drawn from this seed
    tokenizer = load_tokenizer(base, loading.trust_remote_code)
    device = device_for(compute)
    network = load_reward_model(base, tokenizer.pad_token_id, loading, device)
    pairs = load_from_disk(str(preferences / "dataset"), keep_in_memory=True)
    args = RewardConfig(
        **trainer_arguments(compute, out_dir, seed),
        num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        per_device_train_batch_size=per_process(settings.batch_size, "reward_model.batch_size"),
        max_length=settings.max_length_tokens,
    )
    peft = lora_config(settings.lora, "SEQ_CLS") if settings.lora else None
    trainer = RewardTrainer(
        model=network,
        args=args,
        train_dataset=tokenized_pairs(
            tokenizer, pairs["train"] if resample_seed is None else bootstrap_resample(pairs["train"], resample_seed)
        ),
        processing_class=tokenizer,
        peft_config=peft,
    )
    fit(trainer, stage="reward_model", out_dir=out_dir, learning_rate=settings.learning_rate)
    sharded = shards_parameters(trainer)
    if sharded:  # gather the shards into a saved model, and measure that
        save_sharded(trainer, tokenizer, out_dir)
        barrier()
        trained = load_reward_model(str(out_dir), tokenizer.pad_token_id, loading.unquantized(), device)
    else:
        trained = trainer.accelerator.unwrap_model(trainer.model).eval()
    metrics = {
        "train": pairwise_accuracy(
            trained, tokenizer, train_sample(pairs["train"], len(pairs["heldout"]), seed), settings.batch_size
        ),
        "heldout": pairwise_accuracy(trained, tokenizer, pairs["heldout"], settings.batch_size),
        "steps": trainer.state.global_step,
    }
    score_heldout_responses(trained, tokenizer, preferences, out_dir / "heldout_responses.jsonl", settings.batch_size)
    if is_main() and not sharded:
        if settings.lora:
            trained.save_pretrained(out_dir / "adapter")
            merge_adapter(base, out_dir / "adapter", out_dir, loading, reward_pad_token_id=tokenizer.pad_token_id)
        else:
            trained.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    if is_main():
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return {
        "heldout_accuracy": metrics["heldout"]["vs_gold"],
        "train_accuracy": metrics["train"]["vs_gold"],
        "steps": metrics["steps"],
    }
