"""Your own preference pairs (preferences.dataset): the split keeps a dataset's test split as the held-out
prompts, every TRL preference format reads as text, and whole runs with and without a gold judge."""

import json

import pytest

from rlhf_recipes.config.schema import PairsDataset
from rlhf_recipes.errors import RecipeError
from rlhf_recipes.stages.pairs_dataset import split_pairs

from .helpers import REPO


def pair(prompt: str, good: str = " was great .", bad: str = " was awful .") -> dict:
    return {"prompt": prompt, "chosen": good, "rejected": bad}


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_a_file_without_test_split_holds_out_whole_prompts(tmp_path):
    rows = [pair(f"the room {i}") for i in range(20)] + [pair(f"the room {i}", " was nice .") for i in range(20)]
    source = write_jsonl(tmp_path / "pairs.jsonl", rows)
    split = split_pairs(PairsDataset(source=source, heldout_fraction=0.25), seed=0)
    train, heldout = ({row["prompt"] for row in split[name]} for name in ("train", "heldout"))
    assert len(heldout) == 5 and len(train) == 15 and not train & heldout
    assert len(split["heldout"]) == 10  # both pairs of each held-out prompt
    assert split == split_pairs(PairsDataset(source=source, heldout_fraction=0.25), seed=0)  # deterministic


def test_a_test_split_is_the_heldout_set_and_never_trained_on(tmp_path):
    from datasets import Dataset, DatasetDict

    train = [pair(f"the pool {i}") for i in range(10)] + [pair("the shared prompt")]
    test = [pair(f"the bed {i}") for i in range(4)] + [pair("the shared prompt", " was fine .")]
    DatasetDict({"train": Dataset.from_list(train), "test": Dataset.from_list(test)}).save_to_disk(tmp_path / "d")
    split = split_pairs(PairsDataset(source=str(tmp_path / "d")), seed=0)
    assert split["heldout"] == test
    assert split["train"] == train[:10]  # the prompt the test split also has is not trained on
    capped = split_pairs(PairsDataset(source=str(tmp_path / "d"), max_pairs=3, max_heldout_prompts=2), seed=0)
    assert len(capped["train"]) == 3 and len({row["prompt"] for row in capped["heldout"]}) == 2


def test_conversational_and_implicit_prompt_pairs_read_as_text(tmp_path):
    from datasets import Dataset

    from rlhf_recipes.stages.pairs_dataset import text_rows

    def conversational(prompt):
        return {
            "prompt": [{"role": "user", "content": prompt}],
            "chosen": [{"role": "assistant", "content": " was lovely ."}],
            "rejected": [{"role": "assistant", "content": " was dirty ."}],
        }

    source = write_jsonl(tmp_path / "c.jsonl", [conversational(f"the cafe {i}") for i in range(4)])
    split = split_pairs(PairsDataset(source=source, heldout_fraction=0.5), seed=0)
    assert sorted(row["prompt"] for row in split["train"] + split["heldout"]) == [f"the cafe {i}" for i in range(4)]
    assert split["train"][0]["chosen"] == " was lovely ." and split["train"][0]["rejected"] == " was dirty ."
    implicit = {"chosen": "the bar was lovely .", "rejected": "the bar was dirty ."}  # the prompt is the shared start
    assert text_rows(Dataset.from_list([implicit]), "train", "x") == [
        {"prompt": "the bar was", "chosen": " lovely .", "rejected": " dirty ."}
    ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "p", "answer": "a", "rejected": "b"}, "not `chosen` and `rejected`"),
        (
            {
                "prompt": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
                "chosen": "c",
                "rejected": "d",
            },
            "multi-turn prompts are not supported",
        ),
    ],
)
def test_pairs_not_in_preference_format_are_named(tmp_path, row, message):
    source = write_jsonl(tmp_path / "bad.jsonl", [row] * 4)
    with pytest.raises(RecipeError, match=message):
        split_pairs(PairsDataset(source=source), seed=0)


def run_own_pairs(run_dir, monkeypatch, *overrides) -> dict:
    """`rlhf run recipes/smoke_own_pairs.yaml`, cut to seconds, in this process (a subprocess spends seconds
    importing torch)."""
    from typer.testing import CliRunner

    from rlhf_recipes.cli import app

    cut = [
        "sft=null",
        "ppo=null",
        "reward_model.epochs=2",
        "dpo.epochs=1",
        "evaluation.responses_per_prompt=2",
    ]
    monkeypatch.chdir(REPO)
    args = ["run", "recipes/smoke_own_pairs.yaml", *cut, *overrides, "--output-dir", str(run_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads((run_dir / "metrics.json").read_text())


def test_own_pairs_without_and_with_a_gold_judge(tmp_path, monkeypatch):
    """Without gold the report says so and compares by the learned reward; with gold (VADER) it is the full
    report, the pairs' gold scores are VADER's and the reward model is scored against them."""
    from datasets import load_from_disk

    from rlhf_recipes.labeling.labelers import sentiment_score

    bare = run_own_pairs(tmp_path / "bare", monkeypatch)
    assert bare["gold_labeler"] is None and bare["labeler"] == "your own pairs (data/smoke/pairs.jsonl)"
    assert set(bare["policies"]) == {"reference", "dpo"}
    assert 0.5 < bare["reward_model"]["heldout_accuracy_vs_labels"] <= 1
    assert bare["policies"]["dpo"]["learned_gain"]["low"] is not None
    report = (tmp_path / "bare" / "report.md").read_text()
    assert "**No gold judge.**" in report and "gold mean" not in report
    assert not (tmp_path / "bare" / "evaluation" / "best_of_n.jsonl").exists()
    rows = [json.loads(line) for line in (tmp_path / "bare/evaluation/generations.jsonl").read_text().splitlines()]
    assert all(row["gold"] is None for row in rows)

    judged = run_own_pairs(tmp_path / "judged", monkeypatch, "gold_labeler={kind: sentiment}")
    assert judged["gold_labeler"] == "sentiment"
    assert judged["reward_model"]["bayes_accuracy_vs_labels"] is None
    assert 0.5 < judged["reward_model"]["heldout_accuracy"] <= 1
    pairs = load_from_disk(str(tmp_path / "judged/preferences/dataset"))["heldout"]
    assert pairs[0]["chosen_gold"] == pytest.approx(sentiment_score(pairs[0]["chosen"]))
    assert "gold gain" in (tmp_path / "judged" / "report.md").read_text()
