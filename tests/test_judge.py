"""The pairwise judge: a chat model's P("A") read in padded batches as alone, both orders combined so that a
position bias cancels, ties where the orders disagree, and the preferences stage labeling pairs with it."""

import json
import random
import shutil

import pytest

from rlhf_recipes.config.labelers import JudgeLabeler
from rlhf_recipes.config.schema import Preferences
from rlhf_recipes.labeling.judge import PairJudge, log_odds, preference_from_orders
from rlhf_recipes.labeling.pairs import judge_pairs

CHAT_TEMPLATE = (
    "{% for message in messages %}<{{ message['role'] }}> {{ message['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}<assistant> {% endif %}"
)
QUESTIONS = [
    ("The hotel", " was great .", " was awful and the room was dirty ."),
    ("The food", " was cold .", " was warm and lovely ."),
    ("The trip was long but", " fine .", " we had a nice time with friends ."),
]


@pytest.fixture(scope="session")
def tiny_judge(tiny_model_dir, tmp_path_factory):
    """The tiny Llama with a chat template: an (untrained) instruction model."""
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("judge") / "judge"
    shutil.copytree(tiny_model_dir, out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(out)
    return out


def judge_of(model, **settings) -> PairJudge:
    return PairJudge(JudgeLabeler(kind="judge", model=str(model), **settings), "cpu")


def test_batched_answers_equal_each_question_asked_alone(tiny_judge):
    """Left-padded batches of 2 give each question the probability it gets alone, renormalised over A and B."""
    import torch

    judge = judge_of(tiny_judge, batch_size=2)
    batched = judge.judge(QUESTIONS)  # loads the model
    alone = []
    for question in QUESTIONS:
        ids = torch.tensor([judge._question_ids(*question)])
        with torch.no_grad():
            logits = judge.model(input_ids=ids).logits[0, -1, judge.letters]
        alone.append(float(logits.softmax(-1)[0]))
    assert judge.first_probabilities(QUESTIONS) == pytest.approx(alone, abs=1e-5)
    swapped = judge.first_probabilities([(p, b, a) for p, a, b in QUESTIONS])
    combined = [(first + 1 - second) / 2 for first, second in zip(alone, swapped, strict=True)]
    assert [p for p, _ in batched] == pytest.approx(combined, abs=1e-5)
    assert judge.letters == [judge.tokenizer.encode(x, add_special_tokens=False)[0] for x in "AB"]


def test_a_position_bias_cancels_and_disagreeing_orders_are_a_tie():
    """A judge that says "A" with 0.8 whatever it is shown has no preference and contradicts itself; one that
    leans to A by 0.1 on top of a real preference keeps the preference, consistently."""
    assert preference_from_orders(0.8, 0.8) == (pytest.approx(0.5), False)
    probability, consistent = preference_from_orders(0.7 + 0.1, 0.3 + 0.1)
    assert (probability, consistent) == (pytest.approx(0.7), True)
    assert preference_from_orders(0.9, 0.6) == (pytest.approx(0.65), False)  # picks A both times: a tie
    assert log_odds(0.5) == 0 and log_odds(1.0) > 13


class LengthJudge:
    """Prefers the longer response, with P = 0.9; says 0.5 (a tie) when they are equally long."""

    def judge(self, pairs):
        verdicts = []
        for _, a, b in pairs:
            probability = 0.5 if len(a) == len(b) else (0.9 if len(a) > len(b) else 0.1)
            verdicts.append((probability, probability != 0.5))
        return verdicts


def test_judged_pairs_are_labeled_with_noise_and_agreement_with_gold():
    groups = [
        {"prompt": "p", "responses": ["aaaa", "bb", "cc"], "gold": [1.0, 0.0, 2.0]},
        {"prompt": "q", "responses": ["x", "yyy"], "gold": [0.0, 1.0]},
    ]
    rows, ties, judged = judge_pairs(groups, Preferences(pairing="all"), 0, LengthJudge())
    assert ties == 1  # bb vs cc: equally long
    assert [(r["chosen"], r["rejected"]) for r in rows] == [("aaaa", "bb"), ("aaaa", "cc"), ("yyy", "x")]
    assert all(r["noise_free"] for r in rows)
    assert rows[0]["chosen_score"] - rows[0]["rejected_score"] == pytest.approx(log_odds(0.9))
    # the judge preferred aaaa (gold 1) to bb (gold 0): agree; aaaa to cc (gold 2): disagree; yyy to x: agree
    assert judged["judge_agreement_with_gold"] == pytest.approx(2 / 3, abs=1e-4)  # rounded to 4 places
    assert judged["judge_questions"] == 2 * 4 and judged["judge_inconsistent_fraction"] == 0.25
    noisy, _, _ = judge_pairs(groups, Preferences(pairing="all", label_flip_prob=0.49), 0, LengthJudge())
    flipped = [not r["noise_free"] for r in noisy]
    assert any(flipped)
    for row, was_flipped in zip(noisy, flipped, strict=True):
        assert (len(row["chosen"]) < len(row["rejected"])) == was_flipped
        assert (row["chosen_score"] < 0) == was_flipped


def test_random_pairing_asks_disjoint_pairs():
    groups = [{"prompt": "p", "responses": ["a", "bb", "ccc", "dddd"], "gold": [0.0, 1.0, 2.0, 3.0]}]
    rows, ties, judged = judge_pairs(groups, Preferences(pairing="random"), 3, LengthJudge())
    seen = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
    assert ties == 0 and len(rows) == 2 and sorted(seen) == sorted(groups[0]["responses"])
    assert judged["judge_agreement_with_gold"] == 1.0


def longer_first(self, questions):
    """P("A") of a judge that prefers the longer response, with a pull towards "A" (stands in for a model)."""
    return [0.9 if len(first) > len(second) else 0.3 for _, first, second in questions]


def label_with_judge(rows: list[dict], judge_dir, gold, tmp_path):
    """The preferences stage on these sample rows, the tiny judge as labeler and `gold` as gold labeler."""
    from datasets import Dataset

    from rlhf_recipes.stages.preferences import preferences

    Dataset.from_list(rows).save_to_disk(str(tmp_path / "samples"))
    out = tmp_path / "preferences"
    out.mkdir()
    preferences(
        labeler=JudgeLabeler(kind="judge", model=str(judge_dir)),
        gold_labeler=gold,
        settings=Preferences(pairing="all"),
        samples=tmp_path / "samples",
        policy=str(judge_dir),
        trust_remote_code=False,
        device="cpu",
        seed=0,
        out_dir=out,
    )
    return out


def test_the_preferences_stage_labels_pairs_with_a_judge(tiny_judge, tmp_path, monkeypatch):
    """Judge as proxy, sentiment as gold: every pair's gold matches VADER, stats carry the judge's numbers. The
    untrained tiny judge says "A" whatever it is shown (every pair a tie), so here it answers as a judge that
    prefers the longer response would, with a pull towards "A"."""
    monkeypatch.setattr(PairJudge, "first_probabilities", longer_first)
    from datasets import load_from_disk

    from rlhf_recipes.config.labelers import SentimentLabeler
    from rlhf_recipes.labeling.labelers import sentiment_score

    rng = random.Random(0)
    words = ["great", "awful", "fine", "lovely", "dirty", "kind", "cold", "nice"]
    rows = []
    for split, count in (("train", 4), ("heldout", 2)):
        for index in range(count):
            for _ in range(3):
                text = " was " + " and ".join(rng.sample(words, 2)) + " ."
                rows.append({"split": split, "prompt_index": index, "prompt": f"The {split} {index}", "response": text})
    out = label_with_judge(rows, tiny_judge, SentimentLabeler(kind="sentiment"), tmp_path)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["train"]["judge_questions"] == 2 * 4 * 3 and stats["labeler_calls"] == 2 * 6 * 3
    assert stats["train"]["pairs"] + stats["train"]["ties_dropped"] == 4 * 3
    pairs = load_from_disk(str(out / "dataset"))["train"]
    assert all(len(row["chosen"][0]["content"]) > len(row["rejected"][0]["content"]) for row in pairs)
    assert all(row["chosen_gold"] == pytest.approx(sentiment_score(row["chosen"][0]["content"])) for row in pairs)
    scored = [json.loads(line) for line in (out / "scored_responses.jsonl").read_text().splitlines()]
    assert all(row["score"] is None for row in scored) and len(scored) == len(rows)


@pytest.mark.ppo
def test_a_judge_without_gold_labeler_leaves_the_run_without_gold(tiny_judge, tmp_path, monkeypatch, in_repo):
    """No gold_labeler: the judge is not the default gold (it scores no response), so the run has no gold judge;
    the pairs carry no gold and the judge's agreement with gold is not measured."""

    from rlhf_recipes.config.loader import load_recipe
    from rlhf_recipes.config.schema import Recipe

    from .helpers import REPO

    recipe = load_recipe(REPO / "recipes/smoke.yaml", ["labeler={kind: judge}"])
    assert recipe.gold() is None
    assert Recipe.model_validate(recipe.model_dump(mode="json")).gold() is None, "as the report reads it back"
    assert load_recipe(REPO / "recipes/smoke.yaml").gold() is not None
    monkeypatch.setattr(PairJudge, "first_probabilities", longer_first)
    rows = [
        {"split": split, "prompt_index": 0, "prompt": "The room", "response": text}
        for split in ("train", "heldout")
        for text in (" was fine .", " was lovely and warm .", " ok .")
    ]
    out = label_with_judge(rows, tiny_judge, None, tmp_path)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["train"]["pairs"] == 3 and stats["train"]["judge_agreement_with_gold"] is None
    scored = [json.loads(line) for line in (out / "scored_responses.jsonl").read_text().splitlines()]
    assert all(row["gold"] is None and row["score"] is None for row in scored)
