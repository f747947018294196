import json

import pytest

from rlhf_recipes.config.schema import Prompts
from rlhf_recipes.errors import RecipeError
from rlhf_recipes.stages.prompts import load_prompts, split_prompts


def pairs(texts):
    return [(text, text) for text in texts]


def test_split_is_by_distinct_prompt_and_never_leaks():
    prompts = pairs(f"prompt {i % 50}" for i in range(200))  # every prompt four times
    train, heldout = split_prompts(prompts, heldout_fraction=0.2, seed=0)
    assert len(heldout) == 10 and len(train) == 40
    assert not set(train) & set(heldout)
    assert split_prompts(prompts, 0.2, seed=0) == (train, heldout)
    assert split_prompts(prompts, 0.2, seed=1) != (train, heldout)


def test_max_prompts_limits_before_splitting():
    train, heldout = split_prompts(pairs(str(i) for i in range(100)), 0.25, seed=0, max_prompts=20)
    assert (len(train), len(heldout)) == (15, 5)


def test_groups_stay_on_one_side():
    """40 topics with 4 paraphrases each: 8 topics (32 prompts) held out, no topic on both sides."""
    prompts = [(f"variant {v} of topic {t}", f"topic {t}") for t in range(40) for v in range(4)]
    train, heldout = split_prompts(prompts, 0.2, seed=0)
    assert (len(train), len(heldout)) == (128, 32)

    def topic(text):
        return text.split(" of ")[1]

    assert not {topic(p) for p in train} & {topic(p) for p in heldout}


def test_too_few_prompts_to_split_is_an_error():
    with pytest.raises(RecipeError, match="cannot be split"):
        split_prompts(pairs(["only one", "only one"]), 0.5, seed=0)


def test_loads_txt_jsonl_and_saved_datasets(tmp_path):
    from datasets import Dataset, DatasetDict

    (tmp_path / "p.txt").write_text("first\n\n second \n", encoding="utf-8")
    assert load_prompts(Prompts(path=tmp_path / "p.txt")) == pairs(["first", " second "])
    (tmp_path / "p.jsonl").write_text(json.dumps({"question": "why?", "topic": "t"}) + "\n", encoding="utf-8")
    assert load_prompts(Prompts(path=tmp_path / "p.jsonl", field="question")) == [("why?", "why?")]
    assert load_prompts(Prompts(path=tmp_path / "p.jsonl", field="question", group_field="topic")) == [("why?", "t")]
    DatasetDict({"test": Dataset.from_dict({"prompt": ["a", "b"]})}).save_to_disk(str(tmp_path / "saved"))
    assert load_prompts(Prompts(path=tmp_path / "saved", split="test")) == pairs(["a", "b"])


def test_bad_prompt_files_are_named(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"text": "x"}\n', encoding="utf-8")
    with pytest.raises(RecipeError, match="no text field 'prompt'.*prompts.field"):
        load_prompts(Prompts(path=tmp_path / "p.jsonl"))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(RecipeError, match="not UTF-8"):
        load_prompts(Prompts(path=tmp_path / "latin1.txt"))
