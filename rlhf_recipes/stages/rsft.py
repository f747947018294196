"""Rejection-sampling fine-tuning stage (best-of-N distillation; expert iteration with rounds > 1).

Each round the policy answers every train prompt N times, the learned reward model picks the best answer
of each prompt, and TRL's SFTTrainer fine-tunes the policy on those answers (loss on the answer tokens
only). The next round samples from the tuned policy. With LoRA every round trains the same adapter.

Round 0 samples from the initial policy, as the samples stage already did for the same train prompts: when
that stage's answers are draws of the same distribution (`samples_serve_first_round`), round 0 selects among
them instead of sampling again. Like the labeled pairs, they are the run's data, the same for every training
seed.

A finished round is kept (the weights in out_dir/checkpoints/done/), so an interrupted stage resumes at the
round it was in, and inside that round from its last Trainer checkpoint.
"""

import json
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from ..config.base import PositiveFloat, PositiveInt
from ..config.methods import Method
from ..config.schema import Compute, Samples
from ..generation.formatting import demonstration_row, prompt_ids, uses_chat_template
from ..generation.sampling import generate_responses
from ..generation.scoring import reward_scores
from ..models.ensemble import load_reward
from ..models.loading import Loading, Tuning, lora_config, save_policy
from ..runtime.distributed import is_main
from ..runtime.prompt_files import read_prompts
from ..runtime.stage import stage
from ..training.curve import Curve, HeldoutCurve
from ..training.installed import trainer_class
from ..training.trainer import (
    final_loss,
    fit,
    load_policy_and_reference,
    per_process,
    save_trained_policy,
    trainer_arguments,
)


class Rsft(Method):
    """Rejection-sampling fine-tuning (best-of-N distillation, expert iteration): sample N responses per train
    prompt, keep the one the learned reward scores highest, fine-tune on those with TRL's SFTTrainer; with
    rounds > 1, sample again from the tuned policy each round."""

    method: Literal["rsft"] = Field("rsft", description="The training method (under variants:).")
    TITLE: ClassVar[str] = "rejection-sampling fine-tuning"
    SECTION: ClassVar[str] = "Rejection-sampling fine-tuning on the learned reward; omit to skip."
    LOG_PANELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("loss", "SFT loss on the selected answers"),
        ("mean_token_accuracy", "token accuracy"),
    )
    TRAINER: ClassVar[str] = "trl:SFTTrainer"
    READS: ClassVar[frozenset[str]] = frozenset({"reward_model"})
    STEP_PROMPTS: ClassVar[tuple[str, str]] = ("batch_size", "each optimizer step trains on the best answers to")

    samples_per_prompt: Annotated[int, Field(ge=2)] = Field(8, description="N: responses sampled per train prompt.")
    rounds: PositiveInt = Field(1, description="Sample, select, fine-tune this many times (expert iteration).")
    learning_rate: PositiveFloat = Field(1e-5, description="Peak AdamW learning rate of each round (cosine decay).")
    epochs: PositiveFloat = Field(1.0, description="Passes over the selected responses in each round.")
    batch_size: PositiveInt = Field(8, description="Selected responses per optimizer step.")
    generation_batch_size: PositiveInt = Field(
        64, description="Responses sampled, or scored by the reward model, at once (not a training setting)."
    )
    max_new_tokens: PositiveInt = Field(48, description="Longest sampled response in tokens.")
    temperature: PositiveFloat = Field(1.0, description="Sampling temperature.")
    max_length_tokens: PositiveInt = Field(512, description="Prompt+response longer than this is truncated.")
    eval_every_steps: PositiveInt | None = Field(
        None, description="Evaluate on held-out prompts every this many optimizer steps (training curve); off if unset."
    )

    def describe(self) -> str:
        return f"best of {self.samples_per_prompt}, {self.rounds} round(s)"

    def memory_batch(self, prompt_tokens: int) -> tuple[int, int]:
        return self.batch_size, self.max_length_tokens


@stage(version=2)
def rsft(
    *,
    settings: Rsft,
    first_round: Path | None,
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
    """Run rsft.rounds rounds on the train prompts (the prompts stage's output), selecting with the
    reward_model stage's model; save the policy (or adapter) to out_dir, the selected answers of every
    round to out_dir/selected.jsonl, and with a curve the held-out curve to out_dir/curve.json.
    first_round: the samples stage's output when round 0 selects among its train answers, else None."""
    from peft import get_peft_model
    from transformers import set_seed

    set_seed(seed)
    tokenizer, network, reference, device = load_policy_and_reference(
        policy, loading, tuning, compute, reference=curve is not None
    )
    if tuning.lora:
        network = get_peft_model(network, lora_config(tuning.lora, "CAUSAL_LM"))
    scorer = load_reward(reward_model, tokenizer.pad_token_id, reward_loading, device)
    tracker = HeldoutCurve.start(curve, tokenizer, device, network, reference, seed, scorer=scorer)
    train = read_prompts(prompts, "train")
    done = out_dir / "checkpoints" / "done"
    finished = resume_rounds(network, done)
    histories, selected, trainer = finished["histories"], finished["selected"], None
    for round_index in range(finished["rounds"], settings.rounds):
        if round_index == 0 and first_round is not None:
            candidates = sampled_answers(first_round, train, settings.samples_per_prompt)
        else:
            candidates = new_answers(network, tokenizer, train, settings, (seed + round_index) % 2**32)
        best = best_answers(scorer, tokenizer, train, candidates, settings.generation_batch_size)
        selected += [{"round": round_index, "prompt": p, "response": r, "reward_model": s} for p, r, s in best]
        offset = steps_so_far(histories)
        trainer, history = train_round(
            network, tokenizer, best, settings, compute, out_dir, round_index, seed, tracker, offset
        )
        histories.append(history)
        network = trainer.accelerator.unwrap_model(trainer.model)
        keep_round(network, done, round_index + 1, histories, selected)
    steps = steps_so_far(histories)
    if is_main():
        (out_dir / "log_history.json").write_text(json.dumps(sum(histories, []), indent=1) + "\n")
        with open(out_dir / "selected.jsonl", "w", encoding="utf-8") as rows:
            rows.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in selected)
    if trainer is not None:
        save_trained_policy(trainer, network.eval(), tokenizer, out_dir, str(policy), loading, tuning)
    elif is_main():  # every round had finished before an interruption: the kept weights are the result
        save_policy(network.eval(), tokenizer, out_dir, str(policy), loading, merged=tuning.save_merged)
    answers = settings.rounds * settings.samples_per_prompt * len(train)
    return {
        "rounds": settings.rounds,
        "steps": steps,
        "training_generations": answers - (settings.samples_per_prompt * len(train) if first_round is not None else 0),
        "first_round_from_samples": first_round is not None,
        "reward_model_calls": answers,
        "final_loss": final_loss(histories[-1]),
        "selected_reward_model_mean": sum(row["reward_model"] for row in selected[-len(train) :]) / len(train),
    }


def samples_serve_first_round(samples: Samples, rsft: Rsft) -> bool:
    """Are the samples stage's train answers draws of round 0's distribution (the initial policy, same
    temperature and length, no top-p or top-k), and at least N of them per prompt?"""
    same = (samples.temperature, samples.max_new_tokens, samples.top_p, samples.top_k)
    enough = samples.responses_per_prompt >= rsft.samples_per_prompt
    return same == (rsft.temperature, rsft.max_new_tokens, 1.0, 0) and enough


def sampled_answers(samples_dir: Path, prompts: list[str], n: int) -> list[list[str]]:
    """The first n answers the samples stage drew for each train prompt, in the order of `prompts`."""
    from datasets import load_from_disk

    answers: list[list[str]] = [[] for _ in prompts]
    for row in load_from_disk(str(samples_dir)):
        if row["split"] == "train" and len(answers[row["prompt_index"]]) < n:
            if row["prompt"] != prompts[row["prompt_index"]]:
                raise ValueError(f"{samples_dir}: train prompt {row['prompt_index']} is not the prompts stage's")
            answers[row["prompt_index"]].append(row["response"])
    return answers


def new_answers(network, tokenizer, prompts: list[str], rsft: Rsft, seed: int) -> list[list[str]]:
    """N answers of the policy to each prompt."""
    network.eval()
    groups = generate_responses(
        network,
        tokenizer,
        [prompt_ids(tokenizer, prompt) for prompt in prompts],
        rsft.samples_per_prompt,
        rsft.max_new_tokens,
        rsft.temperature,
        rsft.generation_batch_size,
        seed,
    )
    return [[response.text for response in group] for group in groups]


def best_answers(scorer, tokenizer, prompts: list[str], answers: list[list[str]], batch_size: int):
    """(prompt, the answer the reward model scores highest, its score) for every prompt."""
    asked = [prompt for prompt, group in zip(prompts, answers, strict=True) for _ in group]
    scores = iter(reward_scores(scorer, tokenizer, asked, [text for group in answers for text in group], batch_size))
    best = []
    for prompt, group in zip(prompts, answers, strict=True):
        score, text = max(((next(scores), text) for text in group), key=lambda scored: scored[0])
        best.append((prompt, text, score))
    return best


def train_round(
    network, tokenizer, best, rsft: Rsft, compute, out_dir: Path, round_index: int, seed: int, tracker, offset
):
    """One round of SFT on the selected answers; returns the trainer and its log history, with steps numbered
    after the `offset` steps of the earlier rounds."""
    from datasets import Dataset
    from trl import SFTConfig

    SFTTrainer = trainer_class(Rsft.TRAINER)

    chat = uses_chat_template(tokenizer)
    round_dir = out_dir / "checkpoints" / f"round-{round_index}"
    round_dir.mkdir(parents=True, exist_ok=True)
    args = SFTConfig(
        **trainer_arguments(compute, round_dir, (seed + round_index) % 2**32),  # a seed stays below 2**32
        num_train_epochs=rsft.epochs,
        learning_rate=rsft.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        per_device_train_batch_size=per_process(rsft.batch_size, "rsft.batch_size"),
        max_length=rsft.max_length_tokens,
        completion_only_loss=True,
    )
    rows = Dataset.from_list([demonstration_row(prompt, answer, chat) for prompt, answer, _ in best])
    trainer = SFTTrainer(model=network, args=args, train_dataset=rows, processing_class=tokenizer)
    history = fit(trainer, stage="rsft", out_dir=round_dir, learning_rate=rsft.learning_rate, curve=tracker,
                  curve_file=out_dir / "curve.json", curve_offset=offset)  # fmt: skip
    return trainer, [entry | {"round": round_index, "step": entry.get("step", 0) + offset} for entry in history]


def steps_so_far(histories: list[list[dict]]) -> int:
    """Optimizer steps of the finished rounds (their log entries are numbered across rounds)."""
    return max((entry.get("step", 0) for history in histories for entry in history), default=0)


def keep_round(network, done: Path, rounds: int, histories: list, selected: list) -> None:
    """Save the policy after `rounds` finished rounds, so that an interrupted stage resumes after them."""
    if not is_main():
        return
    network.save_pretrained(done)
    (done / "rounds.json").write_text(json.dumps({"rounds": rounds, "histories": histories, "selected": selected}))


def resume_rounds(network, done: Path) -> dict:
    """The rounds an interrupted run of this stage finished (loading their weights into `network`), or none."""
    record = done / "rounds.json"
    if not record.is_file():
        return {"rounds": 0, "histories": [], "selected": []}
    from safetensors.torch import load_file

    weights = done / ("adapter_model.safetensors" if (done / "adapter_config.json").is_file() else "model.safetensors")
    if (done / "adapter_config.json").is_file():
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(network, load_file(weights))
    else:
        network.load_state_dict(load_file(weights), strict=False)
    return json.loads(record.read_text())
