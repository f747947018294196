"""The recipe: its strict schema, how it is read from YAML, and its generated reference."""
