"""The prompts stage's output: train.jsonl and heldout.jsonl, one {"prompt": ...} a line. The prompts stage
(and, with your own pairs, pairs_prompts) writes them; every stage that samples or evaluates reads them."""

import json
from pathlib import Path


def write_prompts(prompts_dir: Path, name: str, prompts: list[str]) -> None:
    """Write the train or heldout prompts."""
    with open(prompts_dir / f"{name}.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps({"prompt": prompt}) + "\n" for prompt in prompts)


def read_prompts(prompts_dir: Path, name: str) -> list[str]:
    """The train or heldout prompts a finished prompts stage wrote."""
    with open(prompts_dir / f"{name}.jsonl", encoding="utf-8") as rows:
        return [json.loads(line)["prompt"] for line in rows]
