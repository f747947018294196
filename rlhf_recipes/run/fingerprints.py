"""A fingerprint per stage: a hash of the settings that stage reads, the files it reads, and the
fingerprints of the stages it builds on. Equal fingerprints mean a stage's output can be reused;
a change anywhere upstream changes every fingerprint downstream of it."""

import hashlib
import json
from pathlib import Path

from .. import __version__
from ..config.schema import Recipe


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def file_digest(path: Path | None) -> str | None:
    """Content hash of a file; for a directory, of its files' relative paths, sizes and contents' hashes."""
    if path is None:
        return None
    if path.is_file():
        sha = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        return sha.hexdigest()
    if path.is_dir():
        return digest([(str(p.relative_to(path)), file_digest(p)) for p in sorted(path.rglob("*")) if p.is_file()])
    return None


def stage_fingerprints(recipe: Recipe) -> dict[str, str]:
    """Fingerprint of every stage of `recipe` (the run's name does not enter any of them)."""
    r = recipe.model_dump(mode="json")
    model, compute, seed = r["model"], r["compute"], recipe.seed
    gold = r["gold_labeler"] or r["labeler"]

    def fingerprint(stage: str, *parts) -> str:
        return digest([__version__, stage, seed, *parts])

    prompts = fingerprint("prompts", r["prompts"], file_digest(recipe.prompts.path))
    corpus = file_digest(recipe.model.tiny.corpus) if recipe.model.tiny else None
    base = fingerprint("base_model", model, corpus, file_digest(recipe.model.gguf))
    policy = base
    fingerprints = {"prompts": prompts, "base_model": base}
    if recipe.sft is not None:
        policy = fingerprints["sft"] = fingerprint("sft", r["sft"], model, compute, base, file_digest(recipe.sft.demonstrations))
    samples = fingerprints["samples"] = fingerprint("samples", r["sampling"], model, compute, policy, prompts)
    preferences = fingerprints["preferences"] = fingerprint("preferences", r["labeler"], gold, r["preferences"], samples)
    reward = fingerprints["reward_model"] = fingerprint("reward_model", r["reward"], model, compute, policy, preferences)
    curve = [r["evaluation"], gold, reward, prompts]
    if recipe.ppo is not None:
        fingerprints["ppo"] = fingerprint("ppo", r["ppo"], r["reward"], model, compute, policy, reward, prompts, curve)
    if recipe.dpo is not None:
        fingerprints["dpo"] = fingerprint("dpo", r["dpo"], r["reward"], model, compute, policy, preferences, curve)
    tuned = [fingerprints.get("ppo"), fingerprints.get("dpo")]
    fingerprints["eval"] = fingerprint("eval", r["evaluation"], gold, r["reward"], r["dpo"], model, compute, policy, reward, tuned, preferences, prompts)
    return fingerprints
