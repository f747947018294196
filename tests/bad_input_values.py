"""Cases of docs/bad-input.md's section on values, run by tests/test_bad_input.py (each a function of
(tmp_path, monkeypatch) returning a CompletedProcess)."""

from .test_bad_input import validate

FEW_PROMPTS = ("prompts.max_prompts=30", "ppo=null")  # 24 train prompts (6 held out); no PPO to complain too

CASES = {
    "seed-too-large": lambda t, m: validate("seed=4294967296"),
    "grpo-more-prompts-than-train": lambda t, m: validate(*FEW_PROMPTS, "grpo={prompts_per_step: 32}"),
    "rloo-more-prompts-than-train": lambda t, m: validate(
        *FEW_PROMPTS, "variants={rloo_wide: {method: rloo, prompts_per_step: 32}}"
    ),
    "online-dpo-more-prompts-than-train": lambda t, m: validate(*FEW_PROMPTS, "online_dpo={prompts_per_step: 32}"),
    "rsft-more-prompts-than-train": lambda t, m: validate(
        *FEW_PROMPTS, "rsft={}", "study={grid: {rsft: {batch_size: [8, 32]}}}"
    ),
    "grid-duplicate-after-typing": lambda t, m: validate("study={grid: {dpo: {beta: [1, 1.0, 2]}}}"),
    "grid-replaces-variant": lambda t, m: validate(
        "variants={dpo_beta_0.1: {method: dpo}}", "study={grid: {dpo: {beta: [0.1, 1]}}}"
    ),
    "condition-on-method-setting": lambda t, m: validate(
        "study={seeds: [0, 1], condition: {key: dpo.beta, values: [0.1, 1]}}"
    ),
    "variant-named-as-method": lambda t, m: validate("variants={grpo: {method: dpo}}"),
    "variant-named-as-run-folder": lambda t, m: validate("variants={plots: {method: dpo}, tensorboard: {method: kto}}"),
    "learning-rate-inf": lambda t, m: validate("dpo.learning_rate=.inf"),
    "variant-without-method": lambda t, m: validate("variants={dpo_b: {beta: 0.5}}"),
    "eval-every-steps-under-ppo-variant": lambda t, m: validate("variants={ppo_b: {method: ppo, eval_every_steps: 2}}"),
    "dpo-loss-rpo": lambda t, m: validate("dpo.loss_type=rpo"),
    "grpo-sequence-level-token-loss": lambda t, m: validate("grpo={importance_sampling_level: sequence}"),
    "grpo-luspo-per-token": lambda t, m: validate("grpo={loss_type: luspo}"),
    "ppo-on-trl-without-ppo": lambda t, m: (
        m.setattr("rlhf_recipes.run.preflight.module_provides", lambda module, name: module != "trl.experimental.ppo"),
        validate(),
    )[1],
    "sweep-duplicate-values": lambda t, m: validate("sweep={key: ppo.kl_coef, values: [0.1, 0.1]}"),
}
