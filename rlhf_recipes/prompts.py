"""Prompts in, train and held-out prompts out: a split by distinct prompt, so no held-out prompt is trained on."""

import json
import random
from pathlib import Path

from .errors import RecipeError
from .recipe import Prompts


def load_prompts(config: Prompts) -> list[str]:
    """Prompt texts from a .txt/.jsonl file, a saved `datasets` directory, or a hub dataset, in file order."""
    if config.hub_dataset is not None:
        from datasets import load_dataset

        return _column(load_dataset(config.hub_dataset, split=config.split), config, config.hub_dataset)
    path = config.path
    if path.is_dir():
        from datasets import DatasetDict, load_from_disk

        try:
            dataset = load_from_disk(str(path))
        except FileNotFoundError:
            raise RecipeError(f"prompts.path: {path} is a directory but not one written by datasets' save_to_disk.")
        if isinstance(dataset, DatasetDict):
            if config.split not in dataset:
                raise RecipeError(f"prompts.split: {config.split!r} is not a split of {path}; it has {list(dataset)}.")
            dataset = dataset[config.split]
        return _column(dataset, config, str(path))
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise RecipeError(f"prompts.path: {path} is not UTF-8 text ({error.reason}). Fix: save it as UTF-8.")
    if path.suffix == ".jsonl":
        prompts = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise RecipeError(f"prompts.path: {path}:{number}: not valid JSON ({error.msg}).")
            if not isinstance(row, dict) or not isinstance(row.get(config.field), str):
                raise RecipeError(
                    f"prompts.path: {path}:{number}: no text field {config.field!r}. Fix: set prompts.field."
                )
            prompts.append(row[config.field])
        return prompts
    return [line for line in lines if line.strip()]


def _column(dataset, config: Prompts, where: str) -> list[str]:
    if config.field not in dataset.column_names:
        raise RecipeError(
            f"prompts.field: {config.field!r} is not a column of {where}; columns: {dataset.column_names}."
        )
    return [str(text) for text in dataset[config.field]]


def split_prompts(prompts: list[str], heldout_fraction: float, seed: int, max_prompts: int | None = None):
    """(train, heldout): distinct prompts, shuffled with `seed`, the first round(n * fraction) held out.

    Duplicates are removed first, so the same text can never land on both sides.
    """
    distinct = list(dict.fromkeys(prompt.strip() for prompt in prompts if prompt.strip()))
    random.Random(seed).shuffle(distinct)
    if max_prompts is not None:
        distinct = distinct[:max_prompts]
    heldout_count = round(len(distinct) * heldout_fraction)
    if heldout_count < 1 or heldout_count >= len(distinct):
        raise RecipeError(
            f"prompts: {len(distinct)} distinct prompt(s) cannot be split with heldout_fraction={heldout_fraction} "
            "into non-empty train and held-out sets. Fix: give more prompts or change prompts.heldout_fraction."
        )
    return distinct[heldout_count:], distinct[:heldout_count]


def prepare_prompts(config: Prompts, seed: int, out_dir: Path) -> tuple[list[str], list[str]]:
    """The prompts stage: load, split, and write train.jsonl and heldout.jsonl to out_dir."""
    train, heldout = split_prompts(load_prompts(config), config.heldout_fraction, seed, config.max_prompts)
    for name, rows in (("train", train), ("heldout", heldout)):
        with open(out_dir / f"{name}.jsonl", "w", encoding="utf-8") as out:
            for prompt in rows:
                out.write(json.dumps({"prompt": prompt}) + "\n")
    return train, heldout


def read_prompts(prompts_dir: Path, name: str) -> list[str]:
    """The train or heldout prompts a finished prompts stage wrote."""
    with open(prompts_dir / f"{name}.jsonl", encoding="utf-8") as rows:
        return [json.loads(line)["prompt"] for line in rows]
