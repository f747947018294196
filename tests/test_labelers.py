import math
import sys

import pytest

from rlhf_recipes.config.labelers import KeywordsLabeler, LengthLabeler, SentimentLabeler
from rlhf_recipes.errors import RecipeError
from rlhf_recipes.labeling.labelers import keywords_score, length_score, make_labeler, score_all, sentiment_score


def test_sentiment_is_vader_compound_by_hand():
    """VADER: compound = x / sqrt(x^2 + 15), x the sum of word valences.

    'good' has valence 1.9: 1.9 / sqrt(3.61 + 15) = 0.4404.
    'not good': negation scales by -0.74: -1.406 / sqrt(1.9768 + 15) = -0.3412.
    """
    assert sentiment_score("good") == pytest.approx(1.9 / math.sqrt(1.9**2 + 15), abs=1e-4)
    assert sentiment_score("not good") == pytest.approx(-1.406 / math.sqrt(1.406**2 + 15), abs=1e-4)
    assert sentiment_score("the brown chair") == 0.0


def test_length_is_minus_distance_in_words():
    assert length_score("one two three", target_words=5) == -2.0
    assert length_score("one two three four five", target_words=5) == 0.0
    assert length_score("  one   two\nthree four five six seven ", target_words=5) == -2.0


def test_keywords_counts_whole_words_any_case():
    assert keywords_score("Great, great! greatest GREAT", ["great"]) == 3.0
    assert keywords_score("a cat and a dog", ["cat", "dog", "bird"]) == 2.0
    assert keywords_score("catalogue", ["cat"]) == 0.0


def test_make_labeler_follows_the_recipe():
    assert make_labeler(SentimentLabeler(kind="sentiment"))("good") == pytest.approx(0.4404, abs=1e-4)
    assert make_labeler(LengthLabeler(kind="length", target_words=2))("a b c") == -1.0
    assert make_labeler(KeywordsLabeler(kind="keywords", keywords=["b"]))("a b b") == 2.0


def test_a_labeler_that_raises_or_returns_nan_is_named():
    with pytest.raises(RecipeError, match="labeler: raised ZeroDivisionError"):
        score_all(lambda text: 1 / 0, ["x"])
    with pytest.raises(RecipeError, match="returned nan"):
        score_all(lambda text: float("nan"), ["x"])


def test_regex_counts_matches():
    from rlhf_recipes.config.labelers import RegexLabeler

    assert make_labeler(RegexLabeler(kind="regex", pattern=r"\bplease\b"))("Please, please help") == 2.0
    assert make_labeler(RegexLabeler(kind="regex", pattern=r"\bplease\b", ignore_case=False))("Please, please") == 1.0


def test_composite_is_the_weighted_sum():
    """1.0 * sentiment('good') + (-0.5) * length(2 words from 1) = 0.4404 - 0.5 * (-1) = 0.9404."""
    from rlhf_recipes.config.labelers import CompositeLabeler

    config = CompositeLabeler.model_validate(
        {
            "kind": "composite",
            "parts": [
                {"weight": 1.0, "labeler": {"kind": "sentiment"}},
                {"weight": -0.5, "labeler": {"kind": "length", "target_words": 2}},
            ],
        }
    )
    assert make_labeler(config)("good") == pytest.approx(0.4404 + 0.5, abs=1e-4)


def test_python_labeler_is_imported_only_by_name(tmp_path, monkeypatch):
    from rlhf_recipes.config.labelers import PythonLabeler

    (tmp_path / "my_labelers.py").write_text("def shouting(text):\n    return float(text.count('!'))\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "my_labelers", raising=False)  # another test's module of that name
    assert make_labeler(PythonLabeler(kind="python", function="my_labelers:shouting"))("hi!!") == 2.0


def test_bad_python_and_regex_labelers_are_recipe_errors(tmp_path, monkeypatch):
    from pydantic import ValidationError

    from rlhf_recipes.config.labelers import PythonLabeler, RegexLabeler

    from .helpers import preflight_problems

    monkeypatch.chdir(tmp_path)
    assert "cannot import module 'nowhere'" in preflight_problems(PythonLabeler(kind="python", function="nowhere:f"))
    with pytest.raises(ValidationError, match="should match pattern"):
        PythonLabeler(kind="python", function="os.system")  # not module:function
    with pytest.raises(ValidationError, match="is not a regular expression"):
        RegexLabeler(kind="regex", pattern="(unclosed")
