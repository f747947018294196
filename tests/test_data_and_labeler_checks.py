"""What is checked of your own pairs, prompt datasets, labelers and model directories (docs/bad-input.md's
section "Data, labelers and models" runs one case of each through the CLI; these pin the rules)."""

import json
import shutil

import pytest
from pydantic import ValidationError

from rlhf_recipes.config.labelers import (
    ClassifierLabeler,
    JudgeLabeler,
    KeywordsLabeler,
    RewardModelLabeler,
    unfindable_keywords,
)
from rlhf_recipes.config.schema import PairsDataset
from rlhf_recipes.errors import RecipeError
from rlhf_recipes.labeling.labelers import keywords_score
from rlhf_recipes.stages.pairs_dataset import split_pairs

from .helpers import build_classifier, preflight_problems


def pair(prompt: str, good: str = " was great .", bad: str = " was awful .") -> dict:
    return {"prompt": prompt, "chosen": good, "rejected": bad}


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def save_splits(path, **splits) -> str:
    from datasets import Dataset, DatasetDict

    DatasetDict({name: Dataset.from_list(rows) for name, rows in splits.items()}).save_to_disk(str(path))
    return str(path)


def test_identical_pairs_are_ties_dropped_and_counted(tmp_path):
    """Three train pairs whose responses are the same text (up to surrounding spaces), one test pair: dropped,
    counted by the split they were read from; the other pairs are kept as they are."""
    train = [pair(f"the room {i}") for i in range(10)] + [pair(f"the room {i}", " same", "same ") for i in range(3)]
    test = [pair(f"the bed {i}") for i in range(4)] + [pair("the bed 0", " same", " same")]
    split = split_pairs(PairsDataset(source=save_splits(tmp_path / "d", train=train, test=test)), seed=0)
    assert split["train"] == train[:10] and split["heldout"] == test[:4]
    assert split["dropped"] == {"ties": {"train": 3, "heldout": 1}, "heldout_prompt_pairs": 0}


def test_train_pairs_of_test_prompts_are_counted_as_dropped(tmp_path):
    """With a test split, each train pair of a test prompt is dropped (and counted); with a fraction held out,
    the train pairs of held-out prompts become the held-out pairs, and none is dropped."""
    train = [pair(f"the pool {i}") for i in range(10)] + [pair("the pool 0", " was fine ."), pair("the pool 1")]
    test = [pair("the pool 0"), pair("the pool 1"), pair("the bed")]
    split = split_pairs(PairsDataset(source=save_splits(tmp_path / "d", train=train, test=test)), seed=0)
    assert split["dropped"]["heldout_prompt_pairs"] == 4 and len(split["train"]) == 8
    by_fraction = split_pairs(PairsDataset(source=write_jsonl(tmp_path / "p.jsonl", train)), seed=0)
    assert by_fraction["dropped"]["heldout_prompt_pairs"] == 0
    assert len(by_fraction["train"]) + len(by_fraction["heldout"]) == len(train)


def test_a_test_split_the_dataset_lacks_is_an_error_unless_it_is_the_default(tmp_path):
    rows = [pair(f"the room {i}") for i in range(10)]
    directory = save_splits(tmp_path / "d", train=rows, validation=rows[:2])
    with pytest.raises(RecipeError, match=r"'tset' is not a split of .*\['train', 'validation'\]. Fix: name one of "):
        split_pairs(PairsDataset(source=directory, test_split="tset"), seed=0)
    assert len(split_pairs(PairsDataset(source=directory), seed=0)["heldout"]) == 2  # no `test`: 20% held out
    single = write_jsonl(tmp_path / "p.jsonl", rows)
    with pytest.raises(RecipeError, match=r"it has \['train'\]. Fix: remove test_split"):
        split_pairs(PairsDataset(source=single, test_split="validation"), seed=0)


@pytest.mark.parametrize(
    ("name", "text"),
    [("e.jsonl", ""), ("e.json", ""), ("w.jsonl", "\n\n"), ("h.csv", "prompt,chosen,rejected\n"), ("a.json", "[]")],
)
def test_a_pairs_file_without_pairs_says_so(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    with pytest.raises(RecipeError, match="holds no pairs"):
        split_pairs(PairsDataset(source=str(tmp_path / name)), seed=0)


@pytest.mark.parametrize("column", ["prompt", "chosen", "rejected"])
def test_an_empty_csv_cell_is_named_by_row_and_column(tmp_path, column):
    """An empty prompt cell used to become the start the responses share (' was'), silently."""
    rows = [{"prompt": f"the room {i}", "chosen": " was lovely .", "rejected": " was dirty ."} for i in range(6)]
    rows[3][column] = ""
    lines = ["prompt,chosen,rejected"] + [",".join(row.values()) for row in rows]
    (tmp_path / "p.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(RecipeError, match=rf"row 3 \(counting from 0\) of .*p.csv has no '{column}' \(an empty cell\)"):
        split_pairs(PairsDataset(source=str(tmp_path / "p.csv")), seed=0)


def test_an_empty_cell_of_a_prompt_dataset_is_named_not_read_as_none(tmp_path):
    from datasets import Dataset

    from rlhf_recipes.config.schema import Prompts
    from rlhf_recipes.stages.prompts import load_prompts

    Dataset.from_list([{"prompt": "the soup"}, {"prompt": None}]).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(RecipeError, match=r"prompts.field: row 1 \(counting from 0\) of .* has no 'prompt'"):
        load_prompts(Prompts(path=tmp_path / "d"))


def test_keywords_that_whole_words_never_find_are_refused():
    findable = ["great", "e-mail", "don't", "café", "5", "two words"]
    assert unfindable_keywords(findable) == []
    assert unfindable_keywords(["😀", ":)", "c++", "", " great", "great"]) == ["😀", ":)", "c++", "", " great"]
    assert keywords_score("so good 😀 :) c++ is", ["😀", ":)", "c++"]) == 0  # why: found only when glued to a word
    with pytest.raises(ValidationError, match=r"'😀', ':\)': a keyword counts only as a whole word.*'😀\|:\\\)'"):
        KeywordsLabeler(kind="keywords", keywords=["😀", ":)", "great"])


@pytest.fixture(scope="module")
def classifier_dir(tiny_model_dir, tmp_path_factory):
    return build_classifier(tiny_model_dir, tmp_path_factory.mktemp("classifier"))


@pytest.mark.parametrize("weights", [{}, {"POSITIVE": 0.0, "NEGATIVE": 0.0}])
def test_classifier_weights_that_weigh_nothing_are_refused(classifier_dir, weights):
    with pytest.raises(ValidationError, match="gives no label a weight, so every response would score 0"):
        ClassifierLabeler(kind="classifier", model=str(classifier_dir), weights=weights)


def test_a_classifier_needs_a_classification_head_and_weights(tiny_model_dir, classifier_dir, tmp_path):
    """A causal LM (transformers' default labels LABEL_0, LABEL_1) would get a random head; a config that names
    no architecture passes when its labels were named in training; a directory without weights is refused."""
    from transformers import AutoConfig

    from rlhf_recipes.labeling.model_labelers import check_classification_head

    causal = [
        ClassifierLabeler(kind="classifier", model=str(tiny_model_dir), label="LABEL_1"),
        RewardModelLabeler(kind="reward_model", path=str(tiny_model_dir)),
    ]
    for labeler in causal:  # the recipe's shape is fine; the preflight step reads the model
        assert "is a LlamaForCausalLM, not a sequence classifier" in preflight_problems(labeler)
    named = AutoConfig.from_pretrained(classifier_dir)
    named.architectures = None
    check_classification_head("named", named)
    unnamed = AutoConfig.from_pretrained(tiny_model_dir)
    unnamed.architectures = None
    with pytest.raises(ValueError, match="neither a classifier architecture nor named labels"):
        check_classification_head("unnamed", unnamed)
    shutil.copytree(classifier_dir, tmp_path / "no_weights", ignore=shutil.ignore_patterns("*.safetensors"))
    no_weights = ClassifierLabeler(kind="classifier", model=str(tmp_path / "no_weights"), label="POSITIVE")
    assert "has a config.json but no weights" in preflight_problems(no_weights)


def test_a_judge_is_checked_for_its_chat_template_at_validation(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    assert "has no chat template, so it cannot be asked a question" in preflight_problems(
        JudgeLabeler(kind="judge", model=str(tiny_model_dir))
    )
    chat = tmp_path / "chat"
    shutil.copytree(tiny_model_dir, chat)
    tokenizer = AutoTokenizer.from_pretrained(chat)
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    tokenizer.save_pretrained(chat)
    assert preflight_problems(JudgeLabeler(kind="judge", model=str(chat))) == ""


def test_a_missing_run_directory_names_the_recipe_that_builds_it(in_repo, tmp_path):
    from pathlib import Path

    from rlhf_recipes.models.run_outputs import unbuilt_run

    gold = "runs/no_such_run_yet/reward_model"
    assert unbuilt_run(Path(gold)) is None  # no recipe of that name
    shipped = Path("runs/smoke_gao_gold/reward_model")
    if not shipped.parent.exists():
        assert unbuilt_run(shipped) == (
            "'runs/smoke_gao_gold' is the run directory of recipes/smoke_gao_gold.yaml, which has not been run yet. "
            "Fix: run `rlhf run recipes/smoke_gao_gold.yaml` first"
        )
    elsewhere = tmp_path / "runs" / "smoke_gao_gold"
    assert unbuilt_run(elsewhere / "sft") == unbuilt_run(elsewhere / "reward_model")  # one message for the run
    assert f"`rlhf run recipes/smoke_gao_gold.yaml --output-dir {elsewhere}` first" in unbuilt_run(elsewhere / "sft")
    elsewhere.mkdir(parents=True)
    assert unbuilt_run(elsewhere / "sft") is None  # a directory that holds no run: not ours to explain
    (elsewhere / "run.json").write_text("{}")
    assert "which has not finished there" in unbuilt_run(elsewhere / "sft")
    assert unbuilt_run(Path("data/smoke/missing")) is None  # recipes/smoke.yaml exists, but data/ is no runs/
