"""A tiny Llama and its tokenizer, built locally and deterministically from a text corpus.

It exists so that tests and the smoke recipe run offline in seconds. The result is an
ordinary Hugging Face model directory, loaded afterwards by the same code as any hub model.
"""

import json
from pathlib import Path

from ..config.schema import TinyModel
from ..errors import RecipeError

PAD, EOS = "<|pad|>", "<|endoftext|>"


def read_corpus(path: Path) -> list[str]:
    """Texts of a .txt (one a line) or .jsonl (prompt+completion, or text) corpus."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if path.suffix != ".jsonl":
        return lines
    texts = []
    for number, line in enumerate(lines, 1):
        row = json.loads(line)
        if "text" in row:
            texts.append(row["text"])
        elif "prompt" in row and "completion" in row:
            texts.append(row["prompt"] + row["completion"])
        else:
            raise RecipeError(f"{path}:{number}: a corpus row needs a text field, or prompt and completion fields.")
    return texts


def llama_config(config: TinyModel, vocab_size: int, pad_token_id: int | None = None, eos_token_id: int | None = None):
    """The LlamaConfig of the tiny model `config` describes, with a vocabulary of `vocab_size` tokens."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=pad_token_id,
        eos_token_id=eos_token_id,
        bos_token_id=None,
    )


def build_tiny_model(config: TinyModel, out_dir: Path, seed: int) -> dict:
    """Train a byte-level BPE tokenizer on the corpus, initialise a Llama with `seed`, save both to out_dir."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

    texts = read_corpus(config.corpus)
    if not texts:
        raise RecipeError(f"model.tiny.corpus: {config.corpus} holds no text. Fix: name a corpus with some lines.")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        special_tokens=[PAD, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token=PAD, eos_token=EOS)
    architecture = llama_config(config, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(architecture)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {"vocabulary": len(tokenizer), "parameters": sum(p.numel() for p in model.parameters())}
