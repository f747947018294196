"""Your own preference pairs (preferences.dataset) in place of sampling and labeling.

Two stages stand in for prompts, samples and preferences: `pairs_prompts` (run as the prompts stage)
reads and splits the dataset once, and writes the train and held-out prompts and the split pairs as
text; `pairs_preferences` (run as the preferences stage) writes those pairs in the layout every later
stage reads, with gold scores when there is a gold labeler. The held-out prompts are those of the
dataset's test split (a pair whose prompt is held out is never trained on), or, without a test split, a
seeded fraction of its distinct prompts. A pair whose chosen and rejected responses are the same text is a
tie and dropped; the preferences stage's stats count what was dropped and why.
"""

import json
import random
from pathlib import Path

from ..config.labelers import Labeler
from ..config.schema import PairsDataset
from ..errors import RecipeError
from ..generation.formatting import preference_row, uses_chat_template
from ..labeling.labelers import gold_scores, make_labeler
from ..models.loading import load_tokenizer
from ..runtime.prompt_files import read_prompts, write_prompts
from ..runtime.stage import fingerprint_extra, path_digest, stage
from .prompts import split_prompts


def load_splits(config: PairsDataset) -> dict:
    """The dataset's splits by name (a single file is one split, `train`)."""
    from datasets import Dataset, load_dataset, load_from_disk

    path = Path(config.source)
    if path.is_dir():
        try:
            loaded = load_from_disk(str(path), keep_in_memory=True)
        except FileNotFoundError:
            raise RecipeError(
                f"preferences.dataset.source: {config.source} is a directory but not one written by datasets' "
                "save_to_disk. Fix: save the pairs with save_to_disk, or point at a .jsonl file"
            ) from None
        return {"train": loaded} if isinstance(loaded, Dataset) else dict(loaded)
    try:
        if path.is_file():
            kind = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}[path.suffix]
            return dict(load_dataset(kind, data_files=str(path)))
        return dict(load_dataset(config.source))
    except Exception as error:
        if path.is_file() and holds_no_rows(path):  # datasets says StopIteration, or that a split has no data
            raise RecipeError(
                f"preferences.dataset.source: {config.source} holds no pairs. Fix: point at the file with your "
                "pairs (prompt, chosen and rejected in each row)"
            ) from None
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise RecipeError(
            f"preferences.dataset.source: cannot load {config.source!r} ({type(error).__name__}: {first_line}). "
            "Fix: give a local file or directory, or a hub id already in the local cache (download it once online)"
        ) from error


def holds_no_rows(path: Path) -> bool:
    """Is this pairs file (which datasets could not load) empty: no text, only a CSV header, or an empty JSON
    array?"""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):  # parquet, or unreadable
        return path.stat().st_size == 0
    lines = text.splitlines()
    return len(lines) <= 1 if path.suffix == ".csv" else text in ("", "[]", "{}")


def turn_text(value, column: str, role: str, where: str) -> str:
    """The text of a plain field, or of a conversation of exactly one `role` turn."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict) and value[0].get("role") == role:
        return str(value[0]["content"])
    raise RecipeError(
        f"preferences.dataset: {where}: `{column}` is {str(value)[:120]!r}; this tool reads plain text or one "
        f"{role} turn. Fix: keep single-turn pairs (multi-turn prompts are not supported)"
    )


def text_rows(split, name: str, source: str) -> list[dict]:
    """(prompt, chosen, rejected) texts of one split; an implicit prompt (inside chosen and rejected) is
    extracted as TRL does."""
    from trl.data_utils import maybe_extract_prompt

    columns = split.column_names
    if not {"chosen", "rejected"} <= set(columns):
        raise RecipeError(
            f"preferences.dataset: split {name!r} of {source} has the columns {columns}, not `chosen` and "
            "`rejected`: it is not in TRL's preference format. Fix: rename its columns to prompt, chosen and "
            "rejected (e.g. with datasets' rename_column)"
        )
    rows = []
    for index, row in enumerate(split):
        where = f"split {name!r}, row {index}"
        for column in ("prompt", "chosen", "rejected"):
            if column in columns and row[column] is None:  # an empty CSV cell, a JSON null, a missing field
                raise RecipeError(
                    f"preferences.dataset: {where} (counting from 0) of {source} has no {column!r} (an empty cell). "
                    "Fix: fill it in, or delete the row"
                )
        if not row.get("prompt"):  # the prompt is implicit: the start that chosen and rejected share
            if not row["chosen"] or not row["rejected"]:
                raise RecipeError(f"preferences.dataset: {where} has an empty chosen or rejected response.")
            row = maybe_extract_prompt({"chosen": row["chosen"], "rejected": row["rejected"]})
        if not row["prompt"] or not str(row["prompt"]).strip():
            raise RecipeError(
                f"preferences.dataset: {where} has no prompt column, and its chosen and rejected responses share "
                "no beginning to take as the prompt. Fix: add a prompt column"
            )
        rows.append(
            {
                "prompt": turn_text(row["prompt"], "prompt", "user", where),
                "chosen": turn_text(row["chosen"], "chosen", "assistant", where),
                "rejected": turn_text(row["rejected"], "rejected", "assistant", where),
            }
        )
    return rows


def split_pairs(config: PairsDataset, seed: int) -> dict:
    """{"train": pairs, "heldout": pairs, "dropped": counts}, pairs as texts; no held-out prompt has a train pair.
    A pair whose chosen and rejected responses are the same text is a tie, with nothing to learn or to
    measure, and is dropped; counts: {"ties": {"train": n, "heldout": n} (by the split they were read from),
    "heldout_prompt_pairs": train pairs dropped because the test split holds their prompt}."""
    splits = load_splits(config)
    if config.train_split not in splits:
        raise RecipeError(
            f"preferences.dataset.train_split: {config.train_split!r} is not a split of {config.source}; it has "
            f"{list(splits)}. Fix: name one of those"
        )
    train, train_ties = without_ties(text_rows(splits[config.train_split], config.train_split, config.source))
    from_test_split, heldout_ties = uses_test_split(config, splits), 0
    if from_test_split:
        heldout, heldout_ties = without_ties(text_rows(splits[config.test_split], config.test_split, config.source))
    else:
        heldout = heldout_by_fraction(train, config, seed)
    held = {row["prompt"].strip() for row in heldout}
    trained = [row for row in train if row["prompt"].strip() not in held]
    dropped = {
        "ties": {"train": train_ties, "heldout": heldout_ties},
        "heldout_prompt_pairs": len(train) - len(trained) if from_test_split else 0,  # else: the held-out pairs
    }
    train, heldout = capped(trained, heldout, config, seed)
    for name, rows in (("train", train), ("held-out", heldout)):
        if not rows:
            raise RecipeError(
                f"preferences.dataset: no {name} pairs are left in {config.source} after the split. Fix: give more "
                "pairs, or change heldout_fraction (or the test split)"
            )
    return {"train": train, "heldout": heldout, "dropped": dropped}


def without_ties(rows: list[dict]) -> tuple[list[dict], int]:
    """The pairs whose chosen and rejected responses differ, and how many did not."""
    kept = [row for row in rows if row["chosen"].strip() != row["rejected"].strip()]
    return kept, len(rows) - len(kept)


def uses_test_split(config: PairsDataset, splits: dict) -> bool:
    """Are the held-out pairs the dataset's test split? Without one, a fraction of the prompts is held out; but
    a test_split other than the default that the dataset lacks is a mistake (a typo), not a wish for that."""
    if config.test_split in splits and config.test_split != config.train_split:
        return True
    if config.test_split not in splits and config.test_split != PairsDataset.model_fields["test_split"].default:
        others = [name for name in splits if name != config.train_split]
        raise RecipeError(
            f"preferences.dataset.test_split: {config.test_split!r} is not a split of {config.source}; it has "
            f"{list(splits)}. Fix: {f'name one of {others}, or ' if others else ''}remove test_split to hold out "
            "heldout_fraction of the prompts instead"
        )
    return False


def heldout_by_fraction(train: list[dict], config: PairsDataset, seed: int) -> list[dict]:
    """The pairs of heldout_fraction of the distinct prompts of `train`, seeded."""
    prompts = [(row["prompt"], row["prompt"]) for row in train]
    try:
        _, heldout_prompts = split_prompts(prompts, config.heldout_fraction, seed)
    except RecipeError as error:
        message = str(error).replace("prompts.heldout_fraction", "preferences.dataset.heldout_fraction")
        raise RecipeError(message.replace("prompts:", "preferences.dataset:", 1)) from None
    held = set(heldout_prompts)
    return [row for row in train if row["prompt"].strip() in held]


def capped(train: list[dict], heldout: list[dict], config: PairsDataset, seed: int) -> tuple[list[dict], list[dict]]:
    """At most max_pairs train pairs and the pairs of at most max_heldout_prompts held-out prompts, seeded."""
    rng = random.Random(seed)
    held = {row["prompt"].strip() for row in heldout}
    if config.max_heldout_prompts is not None and len(held) > config.max_heldout_prompts:
        kept = set(rng.sample(sorted(held), config.max_heldout_prompts))
        heldout = [row for row in heldout if row["prompt"].strip() in kept]
    if config.max_pairs is not None and len(train) > config.max_pairs:
        train = [train[i] for i in sorted(rng.sample(range(len(train)), config.max_pairs))]
    return train, heldout


def distinct_prompts(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(row["prompt"].strip() for row in rows))


@fingerprint_extra(PairsDataset)
def _dataset_files(dataset: PairsDataset) -> dict:
    """The files of a local dataset: editing them rebuilds everything trained on it."""
    path = Path(dataset.source)
    return {"files": path_digest(path)} if path.exists() else {}


@stage(version=3, main_only=True)
def pairs_prompts(*, pairs: PairsDataset, seed: int, out_dir: Path) -> dict:
    """The prompts stage for your own pairs: the distinct prompts of the train and held-out pairs, written
    to out_dir/train.jsonl and out_dir/heldout.jsonl as the prompts stage writes them, the pairs of each
    split, as text, to out_dir/pairs.jsonl, and how many pairs were dropped to out_dir/dropped.json (what the
    preferences stage reads)."""
    split = split_pairs(pairs, seed)
    counts = {}
    for name in ("train", "heldout"):
        prompts = distinct_prompts(split[name])
        write_prompts(out_dir, name, prompts)
        counts[name] = len(prompts)
    with open(out_dir / "pairs.jsonl", "w", encoding="utf-8") as out:
        out.writelines(
            json.dumps({"split": name} | row, ensure_ascii=False) + "\n"
            for name in ("train", "heldout")
            for row in split[name]
        )
    (out_dir / "dropped.json").write_text(json.dumps(split["dropped"], indent=2) + "\n")
    return counts


def read_pairs(prompts_dir: Path) -> dict[str, list[dict]]:
    """The split pairs pairs_prompts wrote: {"train": pairs, "heldout": pairs}, as texts."""
    split = {"train": [], "heldout": []}
    with open(prompts_dir / "pairs.jsonl", encoding="utf-8") as rows:
        for row in map(json.loads, rows):
            split[row.pop("split")].append(row)
    return split


@stage(version=3, main_only=True, placement=("device",))
def pairs_preferences(
    *,
    pairs: PairsDataset,
    gold_labeler: Labeler | None,
    prompts: Path,
    policy: Path | str,
    trust_remote_code: bool,
    device: str,
    out_dir: Path,
) -> dict:
    """The preferences stage for your own pairs: the same files the preferences stage writes (dataset,
    preview.jsonl, stats.json, scored_responses.jsonl), the labels as the dataset gives them. With a gold
    labeler, every chosen and rejected response gets its gold score; without, gold is null throughout. The
    stats count the pairs the prompts stage dropped: ties (chosen = rejected) and train pairs whose prompt the
    test split holds."""
    from datasets import Dataset, DatasetDict

    chat = uses_chat_template(load_tokenizer(str(policy), trust_remote_code))
    split = read_pairs(prompts)
    dropped = json.loads((prompts / "dropped.json").read_text())
    gold = make_labeler(gold_labeler, device) if gold_labeler is not None else None
    splits, stats, scored = {}, {"source": pairs.source}, []
    for name, rows in split.items():
        index = {prompt: i for i, prompt in enumerate(read_prompts(prompts, name))}
        texts = [row[side] for row in rows for side in ("chosen", "rejected")]
        asked = [row["prompt"] for row in rows for _ in range(2)]
        scores = gold_scores(gold, texts, asked)
        records = []
        for number, row in enumerate(rows):
            chosen_gold, rejected_gold = scores[2 * number], scores[2 * number + 1]
            records.append(
                {
                    "prompt": row["prompt"],
                    "chosen": row["chosen"],
                    "rejected": row["rejected"],
                    "chosen_score": None,
                    "rejected_score": None,
                    "chosen_gold": chosen_gold,
                    "rejected_gold": rejected_gold,
                    "noise_free": True,
                }
                | preference_row(row["prompt"], row["chosen"], row["rejected"], chat)
            )
            for side, value in (("chosen", chosen_gold), ("rejected", rejected_gold)):
                scored.append(
                    {
                        "split": name,
                        "prompt_index": index[row["prompt"].strip()],
                        "prompt": row["prompt"],
                        "response": row[side],
                        "score": None,
                        "gold": value,
                        "words": len(row[side].split()),
                    }
                )
        splits[name] = Dataset.from_list(records)
        stats[name] = {"pairs": len(records), "ties_dropped": dropped["ties"][name], "noisy_label_fraction": None}
    stats["train"]["heldout_prompt_pairs_dropped"] = dropped["heldout_prompt_pairs"]
    DatasetDict(splits).save_to_disk(str(out_dir / "dataset"))
    with open(out_dir / "scored_responses.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in scored)
    with open(out_dir / "preview.jsonl", "w", encoding="utf-8") as preview:
        for row in splits["train"].select(range(min(20, len(splits["train"])))):
            preview.write(json.dumps(row, ensure_ascii=False) + "\n")
    stats["labeler_calls"] = 0
    stats["gold_labeler_calls"] = len(scored) if gold is not None else 0
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return {
        "train_pairs": stats["train"]["pairs"],
        "heldout_pairs": stats["heldout"]["pairs"],
        "identical_pairs_dropped": stats["train"]["ties_dropped"] + stats["heldout"]["ties_dropped"],
        "heldout_prompt_pairs_dropped": dropped["heldout_prompt_pairs"],
    }
