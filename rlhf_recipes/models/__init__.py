"""Getting models: loading, LoRA and 4-bit, built-in, GGUF and tiny models, memory estimates."""
