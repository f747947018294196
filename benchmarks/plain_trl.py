"""The smoke recipe's four TRL stages written by hand, without rlhf-recipes: the yardstick for the
wrapper's overhead (benchmarks/overhead.py runs both and compares).

    python benchmarks/plain_trl.py RUN_DIR OUT_DIR

RUN_DIR is a finished `rlhf run recipes/smoke.yaml` (its base model, demonstrations, preference
pairs and train prompts are the inputs; its resolved recipe gives the hyperparameters). Each stage
does what a practitioner writes by hand: load, build the TRL config, train, save; the reward stage
also measures held-out pairwise accuracy. Prints one JSON line: seconds per stage.
"""

import json
import sys
import time
from pathlib import Path

import torch
import yaml
from datasets import Dataset, load_from_disk
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, set_seed

# The trainers are imported inside each stage, as the wrapper's stages import them: import time is
# part of a stage's cost on both sides.


def common(out: Path, seed: int) -> dict:
    return {
        "output_dir": str(out / "checkpoints"),
        "use_cpu": True,
        "bf16": False,
        "gradient_checkpointing": False,
        "report_to": [],
        "seed": seed,
        "data_seed": seed,
        "save_strategy": "no",
        "logging_steps": 1,
        "disable_tqdm": True,
    }


def sft(recipe, base, out, seed):
    from trl import SFTConfig, SFTTrainer

    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    c = recipe["sft"]
    rows = [json.loads(line) for line in Path(c["demonstrations"]).read_text().splitlines() if line.strip()]
    args = SFTConfig(
        **common(out, seed),
        num_train_epochs=c["epochs"],
        learning_rate=c["learning_rate"],
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        per_device_train_batch_size=c["batch_size"],
        max_length=c["max_length_tokens"],
        completion_only_loss=True,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    trainer.train()
    trainer.model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def reward_model(recipe, policy, preferences, out, seed):
    from trl import RewardConfig, RewardTrainer

    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(policy)
    model = AutoModelForSequenceClassification.from_pretrained(policy, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id

    def ids(prompt, response):
        return (
            tokenizer(prompt)["input_ids"]
            + tokenizer(response, add_special_tokens=False)["input_ids"]
            + [tokenizer.eos_token_id]
        )

    pairs = load_from_disk(str(preferences), keep_in_memory=True)
    train = Dataset.from_list(
        [
            {"chosen_ids": ids(p["prompt"], p["chosen"]), "rejected_ids": ids(p["prompt"], p["rejected"])}
            for p in pairs["train"]
        ]
    )
    c = recipe["reward_model"]
    args = RewardConfig(
        **common(out, seed),
        num_train_epochs=c["epochs"],
        learning_rate=c["learning_rate"],
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        per_device_train_batch_size=c["batch_size"],
        max_length=c["max_length_tokens"],
    )
    trainer = RewardTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
    trainer.train()
    model = trainer.model.eval()
    correct, heldout = 0, pairs["heldout"]
    with torch.no_grad():  # held-out pairwise accuracy, batched, right-padded, read at the last real token
        for start in range(0, len(heldout), c["batch_size"]):
            batch = heldout.select(range(start, min(start + c["batch_size"], len(heldout))))
            scores = []
            for key in ("chosen", "rejected"):
                encoded = [ids(p, r) for p, r in zip(batch["prompt"], batch[key], strict=True)]
                padded = tokenizer.pad({"input_ids": encoded}, padding=True, return_tensors="pt", padding_side="right")
                scores.append(model(**padded).logits[:, 0])
            correct += int((scores[0] > scores[1]).sum())
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return correct / len(heldout)


def ppo(recipe, policy, reward_path, train_prompts, out, seed):
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(policy, padding_side="left")
    model, reference = (AutoModelForCausalLM.from_pretrained(policy, dtype=torch.float32) for _ in range(2))
    reward, value = (
        AutoModelForSequenceClassification.from_pretrained(reward_path, num_labels=1, dtype=torch.float32)
        for _ in range(2)
    )
    c = recipe["ppo"]
    args = PPOConfig(
        **common(out, seed),
        learning_rate=c["learning_rate"],
        total_episodes=c["total_episodes"],
        per_device_train_batch_size=c["rollouts_per_update"],
        gradient_accumulation_steps=1,
        num_mini_batches=c["rollouts_per_update"] // c["mini_batch_size"],
        local_rollout_forward_batch_size=c["rollouts_per_update"],
        num_ppo_epochs=c["ppo_epochs"],
        kl_coef=c["kl_coef"],
        kl_estimator=c["kl_estimator"],
        cliprange=c["cliprange"],
        vf_coef=c["vf_coef"],
        cliprange_value=c["cliprange_value"],
        gamma=c["gamma"],
        lam=c["lam"],
        whiten_rewards=c["whiten_rewards"],
        response_length=c["max_new_tokens"],
        temperature=c["temperature"],
        missing_eos_penalty=c["missing_eos_penalty"],
        stop_token="eos",
        num_sample_generations=0,
    )
    dataset = Dataset.from_dict({"input_ids": [tokenizer(p)["input_ids"] for p in train_prompts]})
    trainer = PPOTrainer(
        args=args,
        processing_class=tokenizer,
        model=model,
        ref_model=reference,
        reward_model=reward,
        value_model=value,
        train_dataset=dataset,
        eval_dataset=dataset.select(range(c["mini_batch_size"])),
    )
    trainer.train()
    trainer.model.policy.save_pretrained(out)
    tokenizer.save_pretrained(out)


def dpo(recipe, policy, preferences, out, seed):
    from trl import DPOConfig, DPOTrainer

    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(policy, padding_side="left")
    model, reference = (AutoModelForCausalLM.from_pretrained(policy, dtype=torch.float32) for _ in range(2))
    c = recipe["dpo"]
    pairs = load_from_disk(str(preferences), keep_in_memory=True)["train"].select_columns(
        ["prompt", "chosen", "rejected"]
    )
    args = DPOConfig(
        **common(out, seed),
        num_train_epochs=c["epochs"],
        learning_rate=c["learning_rate"],
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        per_device_train_batch_size=c["batch_size"],
        beta=c["beta"],
        loss_type=[c["loss_type"]],
        max_length=c["max_length_tokens"],
    )
    trainer = DPOTrainer(model=model, ref_model=reference, args=args, train_dataset=pairs, processing_class=tokenizer)
    trainer.train()
    trainer.model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def main() -> None:
    run, out = Path(sys.argv[1]), Path(sys.argv[2])
    recipe = yaml.safe_load((run / "recipe.resolved.yaml").read_text())
    seed, preferences = recipe["seed"], run / "preferences" / "dataset"
    train_prompts = [json.loads(line)["prompt"] for line in (run / "prompts" / "train.jsonl").read_text().splitlines()]
    seconds = {}

    def timed(name, function, *args):
        started = time.perf_counter()
        result = function(*args, out / name, seed)
        seconds[name] = round(time.perf_counter() - started, 2)
        return result

    timed("sft", sft, recipe, str(run / "model"))
    accuracy = timed("reward_model", reward_model, recipe, str(run / "sft"), preferences)
    timed("ppo", ppo, recipe, str(run / "sft"), str(run / "reward_model"), train_prompts)
    timed("dpo", dpo, recipe, str(run / "sft"), preferences)
    print(json.dumps({"seconds": seconds, "reward_model_heldout_accuracy": accuracy}))


if __name__ == "__main__":
    main()
