"""Cases of docs/bad-input.md's section on data, run by tests/test_bad_input.py (each a function of
(tmp_path, monkeypatch) returning a CompletedProcess)."""

import json
from pathlib import Path

from .helpers import REPO, tiny_classifier
from .test_bad_input import in_process, validate

OWN_PAIRS = "recipes/smoke_own_pairs.yaml"
QUICK_OWN_PAIRS = [  # smoke_own_pairs cut to seconds: no SFT, few pairs, short answers, no policy trained
    "sft=null",
    "ppo=null",
    "dpo=null",
    "preferences.dataset.max_pairs=64",
    "preferences.dataset.max_heldout_prompts=8",
    "reward_model.epochs=1",
    "evaluation.responses_per_prompt=1",
    "evaluation.max_new_tokens=8",
]


def smoke_pairs() -> list[dict]:
    return [json.loads(line) for line in (REPO / "data/smoke/pairs.jsonl").read_text().splitlines()]


def own_pairs_run(tmp_path, monkeypatch, source, *overrides):
    """`rlhf run recipes/smoke_own_pairs.yaml` on the pairs at `source`, cut short, in this process."""
    return in_process(
        monkeypatch,
        "run",
        OWN_PAIRS,
        f"preferences.dataset.source={source}",
        *QUICK_OWN_PAIRS,
        *overrides,
        "--output-dir",
        tmp_path / "run",
    )


def with_test_split(tmp_path: Path) -> Path:
    """The smoke pairs as a save_to_disk dataset whose test split holds every pair of the first 72 prompts,
    which the train split holds too (4 pairs each): 288 train pairs whose prompt is held out."""
    from datasets import Dataset, DatasetDict

    rows = smoke_pairs()
    held = list(dict.fromkeys(row["prompt"] for row in rows))[:72]
    test = [row for row in rows if row["prompt"] in held]
    out = tmp_path / "pairs"
    DatasetDict({"train": Dataset.from_list(rows), "test": Dataset.from_list(test)}).save_to_disk(str(out))
    return out


def with_identical_pairs(tmp_path: Path) -> Path:
    """The smoke pairs with three pairs whose rejected response is the chosen one."""
    rows = smoke_pairs()
    for row in rows[:3]:
        row["rejected"] = row["chosen"]
    out = tmp_path / "pairs.jsonl"
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return out


def csv_with_empty_cell(tmp_path: Path) -> Path:
    rows = ["prompt,chosen,rejected"] + [f"the room {i}, was lovely ., was dirty ." for i in range(9)]
    rows[2] = "the room 1,, was dirty ."
    out = tmp_path / "pairs.csv"
    out.write_text("\n".join(rows) + "\n")
    return out


def causal_lm(tmp_path: Path) -> Path:
    """The tiny Llama: a causal language model, with no chat template and no classifier head."""
    tiny_classifier(tmp_path)  # builds it under tmp_path/base
    return tmp_path / "base"


def reward_model_without_weights(tmp_path: Path) -> Path:
    """A reward model's config.json (one output, a classifier architecture) and tokenizer, but no weights."""
    import shutil

    from transformers import AutoConfig

    base, out = causal_lm(tmp_path), tmp_path / "reward_model"
    config = AutoConfig.from_pretrained(base, num_labels=1)
    config.architectures = ["LlamaForSequenceClassification"]
    config.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(base / name, out / name)
    return out


def gold_run_not_built(tmp_path: Path):
    """recipes/smoke_gao.yaml with the gold run (model and labeler) in a directory that does not exist."""
    gold = tmp_path / "nowhere" / "runs" / "smoke_gao_gold"
    recipe = tmp_path / "smoke_gao.yaml"
    recipe.write_text((REPO / "recipes/smoke_gao.yaml").read_text().replace("runs/smoke_gao_gold", str(gold)))
    return validate(recipe=str(recipe))


CASES = {
    "pairs-test-split-missing": lambda t, m: own_pairs_run(
        t, m, with_test_split(t), "preferences.dataset.test_split=tset"
    ),
    "pairs-degenerate": lambda t, m: own_pairs_run(t, m, with_identical_pairs(t)),
    "pairs-dropped-not-counted": lambda t, m: own_pairs_run(t, m, with_test_split(t)),
    "pairs-empty-file": lambda t, m: (t.joinpath("pairs.jsonl").write_text(""), own_pairs_run(t, m, t / "pairs.jsonl"))[
        1
    ],
    "prompts-empty-csv-cell": lambda t, m: own_pairs_run(t, m, csv_with_empty_cell(t)),
    "classifier-empty-weights": lambda t, m: validate(
        f"labeler={{kind: classifier, model: {tiny_classifier(t)}, weights: {{}}}}"
    ),
    "classifier-without-head": lambda t, m: validate(
        f"labeler={{kind: classifier, model: {causal_lm(t)}, label: LABEL_1}}"
    ),
    "keywords-cannot-match": lambda t, m: validate("labeler={kind: keywords, keywords: ['😀', ':)']}"),
    "judge-without-chat-template": lambda t, m: validate(
        f"labeler={{kind: judge, model: {causal_lm(t)}}}", "gold_labeler={kind: sentiment}"
    ),
    "reward-model-dir-without-weights": lambda t, m: validate(
        f"gold_labeler={{kind: reward_model, path: {reward_model_without_weights(t)}}}"
    ),
    "gao-gold-not-built": lambda t, m: gold_run_not_built(t),
}
