"""Prompts in, train and held-out prompts out: a split by distinct prompt (or by prompt group),
so no held-out prompt is ever trained on."""

import json
import random
from pathlib import Path

from ..config.schema import Prompts
from ..errors import RecipeError
from ..runtime.prompt_files import write_prompts
from ..runtime.stage import stage


def load_prompts(config: Prompts) -> list[tuple[str, str]]:
    """(prompt, group) pairs from a .txt/.jsonl file, a saved `datasets` directory, or a hub dataset,
    in source order. Without group_field, each prompt is its own group."""
    if config.hub_dataset is not None:
        from datasets import load_dataset

        return _columns(load_dataset(config.hub_dataset, split=config.split), config, config.hub_dataset)
    path = config.path
    if path.is_dir():
        from datasets import DatasetDict, load_from_disk

        try:
            dataset = load_from_disk(str(path), keep_in_memory=True)
        except FileNotFoundError:
            raise RecipeError(
                f"prompts.path: {path} is a directory but not one written by datasets' save_to_disk."
            ) from None
        if isinstance(dataset, DatasetDict):
            if config.split not in dataset:
                raise RecipeError(f"prompts.split: {config.split!r} is not a split of {path}; it has {list(dataset)}.")
            dataset = dataset[config.split]
        return _columns(dataset, config, str(path))
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise RecipeError(f"prompts.path: {path} is not UTF-8 text ({error.reason}). Fix: save it as UTF-8.") from error
    if path.suffix != ".jsonl":
        return [(line, line) for line in lines if line.strip()]
    prompts = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise RecipeError(f"prompts.path: {path}:{number}: not valid JSON ({error.msg}).") from error
        for key, name in ((config.field, "field"), (config.group_field, "group_field")):
            if key is not None and not (isinstance(row, dict) and isinstance(row.get(key), str)):
                raise RecipeError(f"prompts.path: {path}:{number}: no text field {key!r}. Fix: set prompts.{name}.")
        prompts.append((row[config.field], row[config.group_field] if config.group_field else row[config.field]))
    return prompts


def _columns(dataset, config: Prompts, where: str) -> list[tuple[str, str]]:
    for key, name in ((config.field, "field"), (config.group_field, "group_field")):
        if key is not None and key not in dataset.column_names:
            raise RecipeError(f"prompts.{name}: {key!r} is not a column of {where}; columns: {dataset.column_names}.")
    texts = _cells(dataset, config.field, "field", where)
    groups = _cells(dataset, config.group_field, "group_field", where) if config.group_field else texts
    return list(zip(texts, groups, strict=True))


def _cells(dataset, column: str, name: str, where: str) -> list[str]:
    """A column's values as text; an empty cell (None) is an error naming its row, not the prompt "None"."""
    values = list(dataset[column])
    if None in values:
        raise RecipeError(
            f"prompts.{name}: row {values.index(None)} (counting from 0) of {where} has no {column!r} (an empty "
            "cell). Fix: fill it in, or delete the row"
        )
    return [str(value) for value in values]


def split_prompts(prompts: list[tuple[str, str]], heldout_fraction: float, seed: int, max_prompts: int | None = None):
    """(train, heldout) lists of distinct prompts; whole groups go to one side.

    Duplicates are removed, groups shuffled with `seed`, then (after keeping the first
    max_prompts prompts) the first round(groups * fraction) groups are held out.
    """
    groups: dict[str, list[str]] = {}
    seen = set()
    for text, group in prompts:
        text = text.strip()
        if text and text not in seen:
            seen.add(text)
            groups.setdefault(group, []).append(text)
    order = list(groups)
    random.Random(seed).shuffle(order)
    if max_prompts is not None:
        kept, count = [], 0
        for group in order:
            if count >= max_prompts:
                break
            kept.append(group)
            count += len(groups[group])
        order = kept
    heldout_count = round(len(order) * heldout_fraction)
    if heldout_count < 1 or heldout_count >= len(order):
        raise RecipeError(
            f"prompts: {len(order)} distinct prompt group(s) cannot be split with heldout_fraction={heldout_fraction} "
            "into non-empty train and held-out sets. Fix: give more prompts or change prompts.heldout_fraction."
        )
    heldout = [text for group in order[:heldout_count] for text in groups[group]]
    train = [text for group in order[heldout_count:] for text in groups[group]]
    return train, heldout


@stage(version=1, main_only=True)
def prompts(*, settings: Prompts, seed: int, out_dir: Path) -> dict:
    """Load the prompts, split them, and write train.jsonl and heldout.jsonl to out_dir."""
    loaded = load_prompts(settings)
    if settings.prefix_words is not None:  # openings of longer texts; each opening is its own group unless grouped
        loaded = [
            (opening, group if settings.group_field else opening)
            for text, group in loaded
            for opening in [" ".join(text.split()[: settings.prefix_words])]
        ]
    train, heldout = split_prompts(loaded, settings.heldout_fraction, seed, settings.max_prompts)
    write_prompts(out_dir, "train", train)
    write_prompts(out_dir, "heldout", heldout)
    return {"train": len(train), "heldout": len(heldout)}
