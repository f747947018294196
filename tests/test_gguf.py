"""GGUF models convert once to a cached safetensors directory; later loads use the cache."""

import pytest
import torch

from rlhf_recipes.errors import RecipeError
from rlhf_recipes.models import gguf_cache
from rlhf_recipes.run.preflight import checked_recipe

from .gguf_writer import write_llama_gguf
from .helpers import REPO


@pytest.fixture
def tiny_gguf(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("RLHF_RECIPES_CACHE", str(tmp_path / "cache"))
    (tmp_path / "gguf").mkdir()
    path = tmp_path / "gguf" / "tiny.gguf"
    write_llama_gguf(tiny_model_dir, path)
    return path


def test_conversion_keeps_the_model_and_is_cached(tiny_gguf, tiny_model_dir, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    converted = gguf_cache.converted_gguf(tiny_gguf)
    assert converted.parent.parent == tiny_gguf.parent.parent / "cache"
    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    loaded = AutoModelForCausalLM.from_pretrained(converted)
    ids = AutoTokenizer.from_pretrained(tiny_model_dir)(
        "the soup at the mall was great .", return_tensors="pt"
    ).input_ids
    assert (
        AutoTokenizer.from_pretrained(converted)(
            "the soup at the mall was great .", return_tensors="pt"
        ).input_ids.tolist()
        == ids.tolist()
    )
    assert torch.allclose(original(ids).logits, loaded(ids).logits, atol=1e-5)
    assert "quantization_config" not in loaded.config.to_dict(), "a converted model must be trainable"

    def must_not_convert(*args):
        raise AssertionError("converted again although the cache holds this file")

    monkeypatch.setattr(gguf_cache, "convert_gguf", must_not_convert)
    assert gguf_cache.converted_gguf(tiny_gguf) == converted


def test_a_changed_file_is_converted_again(tiny_gguf, tiny_model_dir):
    first = gguf_cache.converted_gguf(tiny_gguf)
    write_llama_gguf(tiny_model_dir, tiny_gguf)  # same model, but written again: same bytes
    assert gguf_cache.converted_gguf(tiny_gguf) == first
    with open(tiny_gguf, "ab") as handle:
        handle.write(b"\0" * 32)  # padding after the tensors changes the digest, not the model
    assert gguf_cache.converted_gguf(tiny_gguf) != first


def test_a_file_that_is_not_gguf_is_refused_at_validation(tmp_path, in_repo):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 a zip, not a model")
    with pytest.raises(RecipeError, match="is not a GGUF file .*starts with b'PK"):
        checked_recipe(REPO / "recipes/smoke.yaml", ["model.tiny=null", f"model.gguf={fake}"])
