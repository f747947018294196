"""Preferences stage: the proxy labeler scores every response; responses become noisy preference pairs."""

import json
from pathlib import Path

from ..config.labelers import Labeler, is_pairwise
from ..config.schema import Preferences
from ..errors import RecipeError
from ..generation.formatting import preference_row, uses_chat_template
from ..labeling.judge import PairJudge
from ..labeling.labelers import gold_scores, make_labeler, score_all
from ..labeling.pairs import judge_pairs, label_pairs
from ..models.loading import load_tokenizer
from ..runtime.stage import stage


@stage(version=1, main_only=True, placement=("device",))
def preferences(
    *,
    labeler: Labeler,
    gold_labeler: Labeler | None,
    settings: Preferences,
    samples: Path,
    policy: Path | str,
    trust_remote_code: bool,
    device: str,
    seed: int,
    out_dir: Path,
):
    """Write a DatasetDict (train, heldout) in TRL's preference format to out_dir/dataset, plus
    preview.jsonl, stats.json and scored_responses.jsonl (every response with its labeler and gold score).

    samples: the samples stage's output; device: where model labelers run. When the policy's tokenizer has a
    chat template, prompt/chosen/rejected are conversations (one user turn, one assistant turn).
    """
    from datasets import Dataset, DatasetDict, load_from_disk

    chat = uses_chat_template(load_tokenizer(str(policy), trust_remote_code))
    samples = load_from_disk(str(samples), keep_in_memory=True)
    responses, prompts = samples["response"], samples["prompt"]
    if is_pairwise(labeler):  # a judge labels pairs below; no response has a score of its own
        judge, scores = PairJudge(labeler, device), [None] * len(responses)
    else:
        judge, scores = None, score_all(make_labeler(labeler, device), responses, prompts)
    if gold_labeler == labeler:
        gold = scores
    else:  # None (a judge, and no gold_labeler): no gold judge in this run
        gold = gold_scores(gold_labeler and make_labeler(gold_labeler, device), responses, prompts)
    with open(out_dir / "scored_responses.jsonl", "w", encoding="utf-8") as out:
        for row, score, gold_score in zip(samples, scores, gold, strict=True):
            record = {key: row[key] for key in ("split", "prompt_index", "prompt", "response")}
            out.write(
                json.dumps(record | {"score": score, "gold": gold_score, "words": len(row["response"].split())}) + "\n"
            )
    splits, stats = {}, {}
    for offset, split in enumerate(("train", "heldout")):
        groups: dict[int, dict] = {}
        for row, score, gold_score in zip(samples, scores, gold, strict=True):
            if row["split"] == split:
                group = groups.setdefault(
                    row["prompt_index"], {"prompt": row["prompt"], "responses": [], "scores": [], "gold": []}
                )
                group["responses"].append(row["response"])
                group["scores"].append(score)
                group["gold"].append(gold_score)
        if judge is None:
            rows, ties = label_pairs(list(groups.values()), settings, seed + offset)
            judged = {}
        else:
            rows, ties, judged = judge_pairs(list(groups.values()), settings, seed + offset, judge)
        if not rows:
            raise RecipeError(
                f"preferences: every {split} pair was a tie (all {ties} of them), so there is nothing to learn from. "
                "Fix: sample more varied responses (samples.temperature, responses_per_prompt), lower "
                "preferences.tie_margin, or choose a labeler that separates them (a judge ties a pair when its "
                "two orders disagree: a judge that contradicts itself everywhere cannot tell these responses apart)."
            )
        rows = [row | preference_row(row["prompt"], row["chosen"], row["rejected"], chat) for row in rows]
        splits[split] = Dataset.from_list(rows)
        stats[split] = {
            "pairs": len(rows),
            "ties_dropped": ties,
            "noisy_label_fraction": round(sum(not row["noise_free"] for row in rows) / len(rows), 4),
        } | judged
    DatasetDict(splits).save_to_disk(str(out_dir / "dataset"))
    with open(out_dir / "preview.jsonl", "w", encoding="utf-8") as preview:
        for row in splits["train"].select(range(min(20, len(splits["train"])))):
            preview.write(json.dumps(row, ensure_ascii=False) + "\n")
    stats["labeler_calls"] = sum(stats[split].get("judge_questions", 0) for split in splits) if judge else len(scores)
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return {
        "train_pairs": stats["train"]["pairs"],
        "heldout_pairs": stats["heldout"]["pairs"],
        "ties_dropped": stats["train"]["ties_dropped"],
        "noisy_label_fraction": stats["train"]["noisy_label_fraction"],
    }
