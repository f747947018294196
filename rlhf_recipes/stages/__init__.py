"""One module per pipeline stage; each training stage builds exactly one TRL trainer."""

# Every stage, in the order run_recipe runs them (a recipe may skip sft, ppo or dpo).
STAGES = ["prompts", "base_model", "sft", "samples", "preferences", "reward_model", "ppo", "dpo", "eval"]
