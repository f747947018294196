"""Models as labelers: a sequence classifier's label score and a trained reward model's scalar, as the
proxy that labels pairs and as the gold judge, checked against the same models called directly."""

import json
import re

import pytest
from pydantic import ValidationError

from rlhf_recipes.config.labelers import ClassifierLabeler, CompositeLabeler, RewardModelLabeler
from rlhf_recipes.errors import RecipeError
from rlhf_recipes.labeling.labelers import describe, make_labeler, score_all
from rlhf_recipes.labeling.model_labelers import check_hub_labelers

from .helpers import build_classifier, preflight_problems, rlhf_run

TEXTS = [" was great and lovely .", " was awful .", " was nice and the staff were kind to us all day ."]
PROMPTS = ["The hotel", "The food", "The trip"]


@pytest.fixture(scope="session")
def classifier_dir(tiny_model_dir, tmp_path_factory):
    return build_classifier(tiny_model_dir, tmp_path_factory.mktemp("classifier"))


def direct_logits(classifier_dir, texts):
    """The classifier's logits of each text on its own (no padding)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(classifier_dir)
    model = AutoModelForSequenceClassification.from_pretrained(classifier_dir).eval()
    with torch.no_grad():
        return [model(**tokenizer(text, return_tensors="pt")).logits[0] for text in texts]


def test_classifier_scores_a_label_in_batches_as_alone(classifier_dir):
    """Padded batches of 2 give each text's own logit; probability is the softmax; weights combine labels."""
    logit = make_labeler(
        ClassifierLabeler(kind="classifier", model=str(classifier_dir), label="POSITIVE", batch_size=2)
    )
    direct = direct_logits(classifier_dir, TEXTS)
    assert score_all(logit, TEXTS) == pytest.approx([float(row[1]) for row in direct], abs=1e-5)
    probability = make_labeler(
        ClassifierLabeler(kind="classifier", model=str(classifier_dir), label="POSITIVE", output="probability")
    )
    assert score_all(probability, TEXTS) == pytest.approx([float(row.softmax(-1)[1]) for row in direct], abs=1e-5)
    margin = make_labeler(
        ClassifierLabeler(kind="classifier", model=str(classifier_dir), weights={"POSITIVE": 1.0, "NEGATIVE": -1.0})
    )
    assert score_all(margin, TEXTS) == pytest.approx([float(row[1] - row[0]) for row in direct], abs=1e-5)
    assert logit(TEXTS[0]) == pytest.approx(float(direct[0][1]), abs=1e-5)


def test_a_left_padded_tokenizer_still_scores_each_text_alone(classifier_dir, tmp_path):
    """This project saves tokenizers left-padded; the classifier pads on the right whatever it was saved with."""
    import shutil

    from transformers import AutoTokenizer

    left = tmp_path / "left"
    shutil.copytree(classifier_dir, left)
    tokenizer = AutoTokenizer.from_pretrained(left)
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(left)
    labeler = make_labeler(ClassifierLabeler(kind="classifier", model=str(left), label="POSITIVE", batch_size=3))
    expected = [float(row[1]) for row in direct_logits(classifier_dir, TEXTS)]
    assert score_all(labeler, TEXTS) == pytest.approx(expected, abs=1e-5)


def test_one_output_probability_is_a_sigmoid(reward_dir):
    """A single-output classifier's probability is sigmoid(logit) (a softmax over one label is always 1)."""
    import math

    config = {"kind": "classifier", "model": str(reward_dir), "label": "LABEL_0"}
    logits = score_all(make_labeler(ClassifierLabeler.model_validate(config)), TEXTS)
    probability = make_labeler(ClassifierLabeler.model_validate(config | {"output": "probability"}))
    assert score_all(probability, TEXTS) == pytest.approx([1 / (1 + math.exp(-x)) for x in logits], abs=1e-6)
    assert len(set(logits)) == 3


def test_prompt_and_response_is_a_text_pair(classifier_dir):
    """input: prompt_and_response hands the tokenizer (prompt, response) as a pair, as a cross-encoder reads it."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(classifier_dir)
    model = AutoModelForSequenceClassification.from_pretrained(classifier_dir).eval()
    with torch.no_grad():
        pairs = [tokenizer(p, t, return_tensors="pt") for p, t in zip(PROMPTS, TEXTS, strict=True)]
        expected = [float(model(**pair).logits[0, 1]) for pair in pairs]
    config = ClassifierLabeler(
        kind="classifier", model=str(classifier_dir), label="POSITIVE", input="prompt_and_response", batch_size=2
    )
    scores = score_all(make_labeler(config), TEXTS, PROMPTS)
    assert scores == pytest.approx(expected, abs=1e-5)
    assert scores != pytest.approx(score_all(make_labeler(config.model_copy(update={"input": "response"})), TEXTS))


def test_reward_model_labeler_reads_prompt_and_response_as_trained(reward_dir):
    from rlhf_recipes.generation.scoring import reward_scores
    from rlhf_recipes.models.loading import Loading, load_reward_model, load_tokenizer

    tokenizer = load_tokenizer(str(reward_dir))
    # as the labeler loads it: dtype auto, so bfloat16 on a CPU that computes it natively
    model = load_reward_model(str(reward_dir), tokenizer.pad_token_id, Loading.auto("cpu"))
    expected = reward_scores(model, tokenizer, PROMPTS, TEXTS, batch_size=2)  # the labeler's batches
    labeler = make_labeler(RewardModelLabeler(kind="reward_model", path=str(reward_dir), batch_size=2))
    assert score_all(labeler, TEXTS, PROMPTS) == pytest.approx(expected, abs=1e-5)
    assert len(set(expected)) == 3, "the prompts and responses must not all score alike"


def test_a_composite_may_hold_a_model(classifier_dir):
    from rlhf_recipes.config.labelers import CompositeLabeler

    config = CompositeLabeler.model_validate(
        {
            "kind": "composite",
            "parts": [
                {"weight": 2.0, "labeler": {"kind": "classifier", "model": str(classifier_dir), "label": "POSITIVE"}},
                {"weight": 1.0, "labeler": {"kind": "length", "target_words": 3}},
            ],
        }
    )
    direct = direct_logits(classifier_dir, TEXTS)
    expected = [2 * float(row[1]) - abs(len(text.split()) - 3) for row, text in zip(direct, TEXTS, strict=True)]
    assert score_all(make_labeler(config), TEXTS) == pytest.approx(expected, abs=1e-4)


def test_names_in_the_report(classifier_dir, reward_dir):
    classifier = ClassifierLabeler(kind="classifier", model=str(classifier_dir), label="POSITIVE")
    assert describe(classifier) == f"classifier({classifier_dir}: logit of POSITIVE)"
    assert describe(RewardModelLabeler(kind="reward_model", path=str(reward_dir))) == (
        f"reward_model({reward_dir.parent.name}/{reward_dir.name})"
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"label": "JOY"}, r"label 'JOY' is not one of .*\['NEGATIVE', 'POSITIVE'\]"),
        ({"weights": {"POSITIVE": 1.0, "ANGER": -1.0}}, "label 'ANGER' is not one of"),
        ({}, "give exactly one of `label`"),
        ({"label": "POSITIVE", "weights": {"POSITIVE": 1.0}}, "give exactly one of `label`"),
    ],
)
def test_classifier_settings_are_checked_against_its_labels(classifier_dir, settings, message):
    config = {"kind": "classifier", "model": str(classifier_dir)} | settings
    if "is not one of" in message:  # its labels are the model's: the preflight step reads them
        assert re.search(message, preflight_problems(ClassifierLabeler.model_validate(config)))
    else:
        with pytest.raises(ValidationError, match=message):
            ClassifierLabeler.model_validate(config)


def test_missing_or_wrong_models_are_named(tmp_path, classifier_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = ClassifierLabeler.model_validate({"kind": "classifier", "model": str(tmp_path / "nowhere"), "label": "A"})
    assert re.search("model directory .*/nowhere' not found", preflight_problems(missing))
    # a hub id not yet downloaded validates (a GPU recipe names one), and a run checks it before its first stage
    hub = ClassifierLabeler.model_validate({"kind": "classifier", "model": "nobody/no-such-model", "label": "A"})
    with pytest.raises(RecipeError, match="neither a local directory nor in the local cache.*hf download"):
        check_hub_labelers([None, CompositeLabeler(kind="composite", parts=[{"weight": 1.0, "labeler": hub}])])
    check_hub_labelers([ClassifierLabeler(kind="classifier", model=str(classifier_dir), label="POSITIVE")])
    for path, message in (
        (tmp_path / "nowhere", "reward-model directory .* not found"),
        (classifier_dir, "has 2 outputs, not the one scalar"),
        (tmp_path, "no config.json"),
    ):
        labeler = RewardModelLabeler.model_validate({"kind": "reward_model", "path": str(path)})
        assert re.search(message, preflight_problems(labeler))


def samples_dataset(out):
    from datasets import Dataset

    rows = [
        {"split": split, "prompt_index": index, "prompt": prompt, "response": text, "response_tokens": 3}
        for split in ("train", "heldout")
        for index, prompt in enumerate(PROMPTS)
        for text in TEXTS
    ]
    Dataset.from_list(rows).save_to_disk(str(out))
    return rows


@pytest.mark.parametrize("proxy_is_classifier", [True, False])
def test_each_model_labels_pairs_as_proxy_and_judges_as_gold(
    tmp_path, tiny_model_dir, classifier_dir, reward_dir, proxy_is_classifier
):
    """The preferences stage with a classifier proxy and a reward-model gold, and the other way round: every
    response's score and gold are the models' own scores, and each pair's chosen response is the proxy's."""
    from rlhf_recipes.config.schema import Preferences
    from rlhf_recipes.stages.preferences import preferences

    classifier = ClassifierLabeler(kind="classifier", model=str(classifier_dir), label="POSITIVE")
    judge = RewardModelLabeler(kind="reward_model", path=str(reward_dir))
    proxy, gold = (classifier, judge) if proxy_is_classifier else (judge, classifier)
    rows = samples_dataset(tmp_path / "samples")
    out = tmp_path / "preferences"
    out.mkdir()
    preferences(
        labeler=proxy,
        gold_labeler=gold,
        settings=Preferences(pairing="all"),
        samples=tmp_path / "samples",
        policy=str(tiny_model_dir),
        trust_remote_code=False,
        device="cpu",
        seed=0,
        out_dir=out,
    )
    scored = [json.loads(line) for line in (out / "scored_responses.jsonl").read_text().splitlines()]
    prompts, texts = [r["prompt"] for r in rows], [r["response"] for r in rows]
    assert [r["score"] for r in scored] == pytest.approx(score_all(make_labeler(proxy), texts, prompts), abs=1e-5)
    assert [r["gold"] for r in scored] == pytest.approx(score_all(make_labeler(gold), texts, prompts), abs=1e-5)
    pairs = json.loads((out / "stats.json").read_text())
    assert pairs["train"]["pairs"] == 3 * 3  # every pair of 3 responses for 3 prompts: no ties among model scores
    first = json.loads((out / "preview.jsonl").read_text().splitlines()[0])
    assert first["chosen_score"] > first["rejected_score"]


def tensorboard_tags(directory) -> set[str]:
    """The scalar tags in every TensorBoard event file under `directory` (TFRecord frames of Event protos)."""
    import struct

    from tensorboardX.proto import event_pb2

    tags = set()
    for path in directory.rglob("events.out.tfevents.*"):
        data, offset = path.read_bytes(), 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            tags |= {value.tag for value in event.summary.value if value.HasField("simple_value")}
            offset += 12 + length + 4
    return tags


@pytest.mark.slow  # about a minute on 2 cores; the parts it joins are tested above and in test_tracking.py
def test_a_run_judged_by_models_and_tracked_in_tensorboard(tmp_path, classifier_dir, reward_dir):
    """The smoke recipe, cut short, with a classifier proxy, a reward-model gold judge and TensorBoard:
    evaluation's gold is the reward model's score of each prompt and response, every training stage
    writes event files (with the held-out curve), and the final evaluation is logged too."""

    run_dir = tmp_path / "run"
    overrides = [
        "sft.epochs=1",
        "prompts.max_prompts=30",
        "reward_model.epochs=1",
        "ppo.total_episodes=64",
        "ppo.rollouts_per_update=16",
        "ppo.mini_batch_size=8",
        "ppo.eval_every_updates=2",
        "dpo.epochs=1",
        "evaluation.best_of_n=[1, 2]",
        "evaluation.responses_per_prompt=1",
        "evaluation.curve_prompts=8",
        f"labeler={{kind: classifier, model: {classifier_dir}, label: POSITIVE}}",
        f"gold_labeler={{kind: reward_model, path: {reward_dir}}}",
        "compute.report_to=[tensorboard]",
    ]
    metrics = rlhf_run("recipes/smoke.yaml", run_dir, *overrides)
    assert metrics["labeler"] == f"classifier({classifier_dir}: logit of POSITIVE)"
    assert metrics["gold_labeler"] == f"reward_model({reward_dir.parent.name}/{reward_dir.name})"
    rows = [json.loads(line) for line in (run_dir / "evaluation/generations.jsonl").read_text().splitlines()]
    judge = make_labeler(RewardModelLabeler(kind="reward_model", path=str(reward_dir)))
    expected = score_all(judge, [r["response"] for r in rows], [r["prompt"] for r in rows])
    assert [r["gold"] for r in rows] == pytest.approx(expected, abs=1e-4)
    for stage in ("sft", "reward_model", "ppo", "dpo"):
        assert any(tag.startswith("train/") for tag in tensorboard_tags(run_dir / "tensorboard" / stage)), stage
    for stage in ("ppo", "dpo"):
        assert "train/heldout/gold_mean" in tensorboard_tags(run_dir / "tensorboard" / stage), stage
    final = tensorboard_tags(run_dir / "tensorboard" / "evaluation")
    assert {"train/policy/dpo/gold_mean", "train/policy/ppo/kl_mean", "train/best_of_n/2/gold_mean"} <= final


def test_a_report_reads_a_run_whose_classifier_is_gone(tmp_path, tiny_model_dir, in_repo):
    """`rlhf report` reads the run's recipe.resolved.yaml back as a recipe: validation reads no file (the
    preflight step does), so a classifier directory deleted since the run is still named in full."""
    import shutil

    import yaml

    from rlhf_recipes.config.loader import load_recipe
    from rlhf_recipes.labeling.labelers import describe
    from rlhf_recipes.reporting.run_files import read_recipe

    from .helpers import REPO

    directory = build_classifier(tiny_model_dir, tmp_path / "judge")
    labeler = f"labeler={{kind: classifier, model: '{directory}', label: POSITIVE}}"
    recipe = load_recipe(REPO / "recipes/smoke.yaml", [labeler])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "recipe.resolved.yaml").write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
    shutil.rmtree(directory)
    assert describe(read_recipe(run_dir).labeler) == f"classifier({directory}: logit of POSITIVE)"
