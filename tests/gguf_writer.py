"""Write a Hugging Face Llama directory as a float32 GGUF file, as llama.cpp's converter does, so that
GGUF loading can be tested offline on the tiny model."""

import json
from pathlib import Path

import numpy as np


def permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp stores q/k rows interleaved for its rotary layout; transformers undoes this on load."""
    return (
        weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def write_llama_gguf(model_dir: Path, out: Path) -> None:
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    weights = load_file(model_dir / "model.safetensors")
    writer = gguf.GGUFWriter(str(out), arch="llama")
    writer.add_name("tiny llama")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_rope_freq_base(config.get("rope_theta") or config.get("rope_parameters", {}).get("rope_theta", 10000.0))
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    vocab = sorted(tokenizer["model"]["vocab"].items(), key=lambda item: item[1])
    special = {token["content"] for token in tokenizer["added_tokens"]}
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([token for token, _ in vocab])
    writer.add_token_types(
        [gguf.TokenType.CONTROL if token in special else gguf.TokenType.NORMAL for token, _ in vocab]
    )
    merges = tokenizer["model"]["merges"]
    writer.add_token_merges([" ".join(merge) if isinstance(merge, list) else merge for merge in merges])
    writer.add_eos_token_id(config["eos_token_id"])
    writer.add_pad_token_id(config["pad_token_id"])
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
    }
    for layer in range(config["num_hidden_layers"]):
        prefix, block = f"model.layers.{layer}.", f"blk.{layer}."
        names |= {
            prefix + "input_layernorm.weight": block + "attn_norm.weight",
            prefix + "self_attn.q_proj.weight": block + "attn_q.weight",
            prefix + "self_attn.k_proj.weight": block + "attn_k.weight",
            prefix + "self_attn.v_proj.weight": block + "attn_v.weight",
            prefix + "self_attn.o_proj.weight": block + "attn_output.weight",
            prefix + "post_attention_layernorm.weight": block + "ffn_norm.weight",
            prefix + "mlp.gate_proj.weight": block + "ffn_gate.weight",
            prefix + "mlp.up_proj.weight": block + "ffn_up.weight",
            prefix + "mlp.down_proj.weight": block + "ffn_down.weight",
        }
    for name, tensor in weights.items():
        if name.endswith("q_proj.weight"):
            tensor = permute(tensor, heads)
        elif name.endswith("k_proj.weight"):
            tensor = permute(tensor, kv_heads)
        writer.add_tensor(names[name], np.ascontiguousarray(tensor, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
