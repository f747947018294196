"""What several test modules share that is not a fixture (fixtures live in conftest.py)."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def rlhf_run(recipe: str, run_dir, *overrides) -> dict:
    """`rlhf run RECIPE OVERRIDES --output-dir run_dir` from the project root, as a user types it; the run's
    metrics.json (the run must succeed: its stderr is the failure message)."""
    result = subprocess.run(
        [sys.executable, "-m", "rlhf_recipes", "run", recipe, *overrides, "--output-dir", str(run_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def without_timing(metrics: dict) -> dict:
    """metrics.json minus wall-clock times, which no two runs share."""
    metrics = json.loads(json.dumps(metrics))
    metrics.pop("stage_seconds", None)
    for cost in metrics.get("costs", {}).values():
        cost.pop("training_seconds", None)
    return metrics


PROMPTS = [
    f"{item} {place}"
    for item in ("the soup", "the phone", "the hotel room", "the movie")
    for place in ("at the mall", "in the city")
]


def scored_pair(prompt, chosen, rejected) -> dict:
    """A preference row as the label stage writes it (gold = the labeler, no noise)."""
    return {
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "chosen_score": 0.6,
        "rejected_score": -0.5,
        "chosen_gold": 0.6,
        "rejected_gold": -0.5,
        "noise_free": True,
    }


def save_preferences(out, rows) -> None:
    """The label stage's outputs: the pairs, and every held-out response with its scores."""
    import json

    from datasets import Dataset, DatasetDict

    from rlhf_recipes.generation.formatting import text_of

    DatasetDict({"train": Dataset.from_list(rows), "heldout": Dataset.from_list(rows[:4])}).save_to_disk(
        str(out / "dataset")
    )
    with open(out / "scored_responses.jsonl", "w") as handle:
        for row in rows[:4]:
            for side in ("chosen", "rejected"):
                handle.write(
                    json.dumps(
                        {
                            "split": "heldout",
                            "prompt_index": 0,
                            "prompt": text_of(row["prompt"]),
                            "response": text_of(row[side]),
                            "score": row[f"{side}_score"],
                            "gold": row[f"{side}_gold"],
                            "words": 3,
                        }
                    )
                    + "\n"
                )


def build_classifier(base: Path, out: Path) -> Path:
    """A seeded, untrained two-label (NEGATIVE, POSITIVE) sequence classifier on the tokenizer of the model
    in `base`, saved to `out`."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    labels = {0: "NEGATIVE", 1: "POSITIVE"}
    config = AutoConfig.from_pretrained(base, num_labels=2, id2label=labels, label2id={v: k for k, v in labels.items()})
    tokenizer = AutoTokenizer.from_pretrained(base)
    config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def tiny_classifier(out: Path) -> Path:
    """build_classifier on a tiny model built from the smoke corpus, all under `out`."""
    from rlhf_recipes.config.schema import TinyModel
    from rlhf_recipes.models.tiny import build_tiny_model

    build_tiny_model(TinyModel(corpus=REPO / "data/smoke/demonstrations.jsonl"), out / "base", seed=0)
    return build_classifier(out / "base", out / "classifier")


def preflight_problems(section) -> str:
    """What the preflight step (run/preflight.py) says of a validated section and the sections inside it, as one
    text (empty when it finds nothing): the checks of files, models, user code and installed packages."""
    from rlhf_recipes.run.preflight import section_problems

    return "\n".join(section_problems(section, []))
