"""Ensemble stage: the trained reward models of `reward_model.ensemble` read as one (models/ensemble.py).

It trains nothing: each member is a reward_model stage of its own (stored once, whatever the aggregate). This
stage puts their weights in out_dir/members/<i> (hard links where it can), maps each member onto member 0's
scale (shift and scale matching member 0's mean and SD on the held-out sampled responses: a Bradley-Terry
reward has no origin or unit of its own), and writes what a reward_model stage writes, for the aggregate:
metrics.json (pair accuracies, with each member's and how much the members disagree) and
heldout_responses.jsonl (the aggregate's score of every held-out sampled response, and each member's).
"""

import json
from pathlib import Path

from ..config.schema import Compute, Ensemble
from ..generation.formatting import text_of
from ..generation.scoring import reward_scores
from ..metrics import mean, pair_accuracies, std
from ..models.ensemble import ENSEMBLE_FILE, MEMBERS
from ..models.loading import Loading, device_for, load_reward_model, load_tokenizer
from ..runtime.files import link_tree, write_atomically
from ..runtime.stage import stage
from .reward_model import train_sample

BOOKKEEPING = ("stage.json", "store.json", "metrics.json", "heldout_responses.jsonl")  # a member stage's own


def onto_first(scores: list[list[float]]) -> tuple[list[float], list[float]]:
    """(scales, shifts) mapping each member's scores (one list per member) to member 0's mean and SD."""
    means, sds = [mean(s) for s in scores], [std(s) for s in scores]
    scales = [sds[0] / sd if sd > 0 else 1.0 for sd in sds]
    return scales, [means[0] - scale * m for scale, m in zip(scales, means, strict=True)]


@stage(version=1, main_only=True)
def reward_ensemble(
    *,
    settings: Ensemble,
    members: list[Path],
    preferences: Path,
    reward_loading: Loading,
    compute: Compute,
    batch_size: int,
    seed: int,
    out_dir: Path,
):
    """Aggregate the member reward models in `members` (their reward_model stages' outputs, member 0 first) as
    `settings` says; preferences: the preferences stage's output, for the held-out pairs scored here."""
    import torch
    from datasets import load_from_disk

    from ..models.ensemble_module import aggregate

    device = device_for(compute)
    tokenizer = load_tokenizer(str(members[0]), reward_loading.trust_remote_code)
    rows = [read_scored(member / "heldout_responses.jsonl") for member in members]
    scales, shifts = onto_first([[row["reward_model"] for row in member_rows] for member_rows in rows])
    pairs = load_from_disk(str(preferences / "dataset"), keep_in_memory=True)
    sets = {"train": train_sample(pairs["train"], len(pairs["heldout"]), seed), "heldout": pairs["heldout"]}
    sides = {name: pair_sides(pair_set) for name, pair_set in sets.items()}
    scored = {name: [[], []] for name in sets}  # per set: chosen, rejected; each members x pairs
    for member in members:
        model = load_reward_model(str(member), tokenizer.pad_token_id, reward_loading, device)
        for name, (prompts, chosen, rejected) in sides.items():
            for side, texts in zip(scored[name], (chosen, rejected), strict=True):
                side.append(reward_scores(model, tokenizer, prompts, texts, batch_size, shared=False))
        del model

    def mapped(per_member: list[list[float]]):
        return torch.tensor(per_member).T * torch.tensor(scales) + torch.tensor(shifts)  # rows x members

    def combined(per_member: list[list[float]]) -> list[float]:
        return aggregate(mapped(per_member), settings.aggregate, settings.weight()).tolist()

    def accuracies(name: str) -> dict:
        chosen, rejected = (combined(side) for side in scored[name])
        margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
        return pair_accuracies(
            margins, sets[name]["chosen_gold"], sets[name]["rejected_gold"], sets[name]["noise_free"]
        )

    responses = mapped([[row["reward_model"] for row in member_rows] for member_rows in rows])
    combined_scores = aggregate(responses, settings.aggregate, settings.weight()).tolist()
    members_metrics = [json.loads((member / "metrics.json").read_text()) for member in members]
    heldout_margins = mapped(scored["heldout"][0]) - mapped(scored["heldout"][1])  # pairs x members
    metrics = {
        "train": accuracies("train"),
        "heldout": accuracies("heldout"),
        "steps": sum(m["steps"] for m in members_metrics),
        "ensemble": settings.model_dump(mode="json")
        | {
            "penalty": settings.weight(),
            "member_metrics": members_metrics,
            "scales": scales,
            "shifts": shifts,
            # how much the members disagree: on the order of held-out pairs, and on held-out responses' scores
            "pairs_all_members_agree": mean([bool((row > 0).all() or (row < 0).all()) for row in heldout_margins]),
            "member_sd_mean": responses.std(-1, correction=0).mean().item(),
            "score_sd": std(combined_scores),
        },
    }
    store_ensemble(out_dir, members, settings, scales, shifts, tokenizer)
    with open(out_dir / "heldout_responses.jsonl", "w", encoding="utf-8") as handle:
        for row, score, member_scores in zip(rows[0], combined_scores, responses.tolist(), strict=True):
            handle.write(json.dumps(row | {"reward_model": score, "member_scores": member_scores}) + "\n")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return {
        "heldout_accuracy": metrics["heldout"]["vs_gold"],
        "train_accuracy": metrics["train"]["vs_gold"],
        "steps": metrics["steps"],
        "members_agree": metrics["ensemble"]["pairs_all_members_agree"],
    }


def store_ensemble(out_dir: Path, members: list[Path], settings: Ensemble, scales, shifts, tokenizer) -> None:
    """What models/ensemble.py's load_reward reads: the members' weights, the rule and each member's mapping onto
    member 0's scale, and the tokenizer."""
    for index, member in enumerate(members):
        link_tree(member, out_dir / MEMBERS / str(index), skip=BOOKKEEPING)
    tokenizer.save_pretrained(out_dir)
    described = settings.model_dump(mode="json") | {
        "members": len(members),
        "penalty": settings.weight(),  # what the aggregate subtracts per unit of variance (0 but for uncertainty)
        "scales": scales,
        "shifts": shifts,
    }
    write_atomically(out_dir / ENSEMBLE_FILE, json.dumps(described, indent=2) + "\n")


def read_scored(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as rows:
        return [json.loads(row) for row in rows]


def pair_sides(pairs) -> tuple[list[str], list[str], list[str]]:
    """(prompts, chosen, rejected) texts of preference pairs."""
    return (
        [text_of(p) for p in pairs["prompt"]],
        [text_of(c) for c in pairs["chosen"]],
        [text_of(r) for r in pairs["rejected"]],
    )
