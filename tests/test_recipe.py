"""The schema: shipped recipes validate, and every mistake is reported with its path and a fix."""

from pathlib import Path

import pytest
import yaml

from rlhf_recipes.errors import RecipeError
from rlhf_recipes.run.preflight import checked_recipe

from .helpers import REPO

RECIPES = sorted((REPO / "recipes").glob("*.yaml"))  # recipes/accelerate/ holds accelerate configs, not recipes


def test_there_are_recipes():
    assert any(path.name == "smoke.yaml" for path in RECIPES)


def trains_ppo(path: Path) -> bool:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    variants = (data.get("variants") or {}).values()
    return data.get("ppo") is not None or any(v.get("method") == "ppo" for v in variants)


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=str(p.relative_to(REPO)), marks=[pytest.mark.ppo] if trains_ppo(p) else []) for p in RECIPES],
)
def test_every_shipped_recipe_validates(path, in_repo, request):
    overrides = []
    if path.name == "smoke_gao.yaml":  # reads what recipes/smoke_gao_gold.yaml writes: stand-ins of both kinds
        model, reward = request.getfixturevalue("tiny_model_dir"), request.getfixturevalue("reward_dir")
        overrides = [f"model.name_or_path={model}", f"labeler.path={reward}"]
    checked_recipe(path, overrides)


def problems(tmp_path: Path, text: str, overrides=()) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RecipeError) as error:
        checked_recipe(path, list(overrides))
    return str(error.value)


def smoke_with(overrides) -> str:
    with pytest.raises(RecipeError) as error:
        checked_recipe(REPO / "recipes/smoke.yaml", overrides)
    return str(error.value)


def test_unknown_key_suggests_the_close_one(in_repo):
    message = smoke_with(["ppo.kl_cof=0.1"])
    assert "ppo.kl_cof: unknown key" in message and "Did you mean 'kl_coef'?" in message


def test_wrong_type_names_path_value_and_meaning(in_repo):
    message = smoke_with(["seed=abc"])
    assert "seed: got 'abc' (str); input should be a valid integer" in message


def test_ppo_key_under_dpo_and_dpo_key_under_ppo(in_repo):
    message = smoke_with(["dpo.kl_coef=0.1", "ppo.beta=0.1"])
    assert "dpo.kl_coef: 'kl_coef' is a PPO setting" in message and "move it under ppo:" in message
    assert "ppo.beta: 'beta' is a setting of DPO, KTO, SimPO, ORPO, RLOO, GRPO, online DPO, not of PPO" in message
    assert "Fix: move it under one of dpo:, kto:," in message


@pytest.mark.ppo
def test_all_problems_are_reported_at_once(in_repo):
    message = smoke_with(["seed=-1", "samples.top_p=2", "labeler.kind=sentimen", "foo=1"])
    assert message.startswith(str(REPO / "recipes/smoke.yaml") + ": 4 problem(s)")
    assert "seed: got -1" in message and "samples.top_p: got 2" in message
    assert "Did you mean 'sentiment'?" in message and "foo: unknown key" in message


def test_labeler_key_of_another_kind(in_repo):
    message = smoke_with(["labeler.target_words=5"])
    assert "'target_words' is a setting of labeler kind 'length'" in message


def test_bad_overrides(in_repo):
    assert "not of the form key.path=value" in smoke_with(["ppo.kl_coef"])
    assert "seed is a value, not a section" in smoke_with(["seed.x=1"])


def test_a_recipe_may_train_only_a_reward_model(in_repo):
    """No method section: the run samples, labels, trains the reward model and evaluates the reference and
    best-of-N (recipes/smoke_gao_gold.yaml trains a gold reward model this way)."""
    recipe = checked_recipe(REPO / "recipes/smoke.yaml", ["ppo=null", "dpo=null"])
    assert recipe.methods() == {}


@pytest.mark.ppo
def test_overrides_parse_yaml_values_including_exponents(in_repo):
    recipe = checked_recipe(REPO / "recipes/smoke.yaml", ["ppo.kl_coef=1e-2", "dpo=null", "name=other"])
    assert recipe.ppo.kl_coef == 0.01 and recipe.dpo is None and recipe.name == "other"


@pytest.mark.ppo
def test_cross_field_rules(in_repo):
    assert "must be a multiple of mini_batch_size" in smoke_with(["ppo.mini_batch_size=7"])
    assert "exactly one of name_or_path, gguf, builtin and tiny" in smoke_with(["model.name_or_path=gpt2"])


def test_missing_file_names_the_key_and_directory(in_repo):
    message = smoke_with(["prompts.path=nowhere.txt"])
    assert f"prompts.path: 'nowhere.txt' not found (relative paths start at {REPO})" in message


def test_malformed_yaml_gives_line_and_column(tmp_path):
    message = problems(tmp_path, "name: x\n\tseed: 1\n")
    assert "recipe.yaml:2:1: malformed YAML: found character '\\t' that cannot start any token" in message


def test_duplicate_keys_are_errors(tmp_path):
    assert "key 'seed' appears twice (first on line 2)" in problems(tmp_path, "name: x\nseed: 1\nseed: 2\n")


def test_empty_and_non_mapping_recipes(tmp_path):
    assert "the recipe is empty" in problems(tmp_path, "")
    assert "must be a mapping" in problems(tmp_path, "- a\n- b\n")


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="recipe file not found"):
        checked_recipe(tmp_path / "absent.yaml")


def test_recipe_reference_doc_is_current():
    from rlhf_recipes.config.docs import render

    assert (REPO / "docs/recipe.md").read_text(encoding="utf-8") == render(), (
        "docs/recipe.md is stale: rlhf reference > docs/recipe.md"
    )


@pytest.mark.ppo
def test_a_study_expands_to_validated_runs_with_one_variant_per_grid_point(in_repo):
    from rlhf_recipes.config.loader import study_runs

    overrides = [
        "study.seeds=[0, 1]",
        "study.grid={ppo: {kl_coef: [0.01, 1.0]}}",
        "study.condition={key: preferences.label_flip_prob, values: [0.0, 0.2]}",
    ]
    recipe = checked_recipe(REPO / "recipes/smoke.yaml", overrides)
    runs = study_runs(recipe, recipe.model_dump(mode="json"))
    assert [run.label for run in runs] == [
        "label_flip_prob-0.0/seed-0",
        "label_flip_prob-0.0/seed-1",
        "label_flip_prob-0.2/seed-0",
        "label_flip_prob-0.2/seed-1",
    ]
    first = runs[2].data
    assert (first["seed"], first["preferences"]["label_flip_prob"], "study" in first) == (0, 0.2, False)
    assert {name: v.get("kl_coef") for name, v in first["variants"].items()} == {
        "ppo_kl_coef_0.01": 0.01,
        "ppo_kl_coef_1": 1.0,
    }
    assert "ppo" not in first and "dpo" in first, "a gridded policy becomes its variants; the others stay"


@pytest.mark.ppo
def test_an_old_sweep_is_the_study_it_means(in_repo):
    sweep = checked_recipe(REPO / "recipes/smoke.yaml", ["sweep={key: ppo.kl_coef, values: [0.1], seeds: [0, 1]}"])
    assert (sweep.study.seeds, sweep.study.grid, sweep.study.condition) == ([0, 1], {"ppo": {"kl_coef": [0.1]}}, None)
    noise = checked_recipe(REPO / "recipes/smoke.yaml", ["sweep={key: preferences.label_flip_prob, values: [0.1]}"])
    assert (noise.study.grid, noise.study.condition.key) == ({}, "preferences.label_flip_prob")


@pytest.mark.ppo
def test_every_study_run_is_validated(in_repo):
    message = smoke_with(["sweep={key: ppo.kl_coef, values: [0.1, -1]}"])
    assert "study (every run): variants.ppo_kl_coef_-1.kl_coef: got -1" in message
    assert "study.grid.ppo.kl_cof: ppo has no setting kl_cof. Fix: did you mean kl_coef?" in smoke_with(
        ["study={grid: {ppo: {kl_cof: [0.1]}}}"]
    )
    assert "the recipe trains no policy ppx" in smoke_with(["study={grid: {ppx: {kl_coef: [0.1]}}}"])
    assert "grid.ppo varies 2 knobs" in smoke_with(["study={grid: {ppo: {kl_coef: [0.1], learning_rate: [1]}}}"])
    assert "key and values go together" in smoke_with(["sweep={key: ppo.kl_coef}"])


@pytest.mark.ppo
def test_a_separate_gold_labeler(in_repo):
    recipe = checked_recipe(REPO / "recipes/smoke.yaml", ["gold_labeler={kind: length, target_words: 8}"])
    assert recipe.gold_labeler.kind == "length" and recipe.labeler.kind == "sentiment"


def test_empty_study_values_are_an_error(in_repo):
    assert "study.grid.ppo.kl_coef: got [] (list); list should have at least 1 item" in smoke_with(
        ["sweep={key: ppo.kl_coef, values: []}"]
    )
    assert "study.seeds: got [] (list); list should have at least 1 item" in smoke_with(["study={seeds: []}"])


@pytest.mark.ppo
def test_old_section_names_still_validate_as_the_new_ones(tmp_path, in_repo):
    """`sampling:` and `reward:` were renamed `samples:` and `reward_model:`, after their stages."""
    text = (
        (REPO / "recipes/smoke.yaml")
        .read_text()
        .replace("\nsamples:", "\nsampling:")
        .replace("\nreward_model:", "\nreward:")
    )
    old = tmp_path / "old.yaml"
    old.write_text(text)
    assert checked_recipe(old) == checked_recipe(REPO / "recipes/smoke.yaml")
    assert checked_recipe(old, ["reward.epochs=2", "sampling.top_k=5"]) == checked_recipe(
        REPO / "recipes/smoke.yaml", ["reward_model.epochs=2", "samples.top_k=5"]
    )
    both = tmp_path / "both.yaml"
    both.write_text(text + "\nsamples: {top_k: 3}\n")
    with pytest.raises(RecipeError, match="sampling: is the old name of samples:, and the recipe has both"):
        checked_recipe(both)


@pytest.mark.ppo
def test_training_seeds_are_runs_on_the_data_of_one_seed(in_repo):
    from rlhf_recipes.config.loader import study_runs

    overrides = [
        "seed=7",
        "study={training_seeds: [0, 3], condition: {key: preferences.label_flip_prob, values: [0.1, 0.3]}}",
    ]
    recipe = checked_recipe(REPO / "recipes/smoke.yaml", overrides)
    runs = study_runs(recipe, recipe.model_dump(mode="json"))
    assert [(run.label, run.seed, run.training_seed) for run in runs] == [
        ("label_flip_prob-0.1/training-seed-0", 7, 0),
        ("label_flip_prob-0.1/training-seed-3", 7, 3),
        ("label_flip_prob-0.3/training-seed-0", 7, 0),
        ("label_flip_prob-0.3/training-seed-3", 7, 3),
    ]
    assert [(run.data["seed"], run.data["training_seed"]) for run in runs[:2]] == [(7, 0), (7, 3)]
    whole = checked_recipe(REPO / "recipes/smoke.yaml", ["training_seed=5", "study={seeds: [1, 2]}"])
    runs = study_runs(whole, whole.model_dump(mode="json"))
    assert [(run.label, run.seed, run.training_seed, run.data["training_seed"]) for run in runs] == [
        ("seed-1", 1, 5, 5),
        ("seed-2", 2, 5, 5),
    ]


def test_a_study_replicates_seeds_or_training_seeds_each_listed_once(in_repo):
    both = smoke_with(["study={seeds: [0, 1], training_seeds: [0, 1]}"])
    assert "study: seeds [0, 1] and training_seeds [0, 1]: a study replicates either whole runs (seeds)" in both
    assert "Fix: keep seeds" in both
    assert "study.seeds: 0 listed more than once; each seed is one run. Fix: list each seed once" in smoke_with(
        ["study={seeds: [0, 0, 1]}"]
    )
    assert "study.training_seeds: 2 listed more than once" in smoke_with(["study={training_seeds: [2, 1, 2]}"])
    assert "study.training_seeds.0: got 4294967296" in smoke_with(["study={training_seeds: [4294967296]}"])
    assert "training_seed: got -1" in smoke_with(["training_seed=-1"])
    assert "training_seed cannot be a condition" in smoke_with(
        ["study={condition: {key: training_seed, values: [0, 1]}}"]
    )


@pytest.mark.ppo
def test_a_variant_trains_with_a_seed_of_its_own(in_repo):
    """Two variants set alike would otherwise train one policy twice: each draws its seed from
    sha256("<training seed>:<name>"); the dpo: section keeps the training seed itself."""
    import hashlib

    twins = "variants={dpo_a: {method: dpo, beta: 0.1}, dpo_b: {method: dpo, beta: 0.1}}"
    recipe = checked_recipe(REPO / "recipes/smoke.yaml", [twins, "training_seed=4"])
    seeds = {name: recipe.policy_seed(name) for name in ("ppo", "dpo", "dpo_a", "dpo_b")}
    assert seeds["ppo"] == seeds["dpo"] == 4
    assert seeds["dpo_a"] == int.from_bytes(hashlib.sha256(b"4:dpo_a").digest()[:4], "big")
    assert len(set(seeds.values())) == 3 and all(0 <= seed < 2**32 for seed in seeds.values())
    assert checked_recipe(REPO / "recipes/smoke.yaml", [twins]).policy_seed("dpo_a") != seeds["dpo_a"]


def test_gspo_is_a_grpo_variant_beside_grpo():
    recipe = checked_recipe(
        REPO / "recipes/smoke.yaml",
        [
            "ppo=null",
            "grpo={}",
            "variants={gspo: {method: grpo, loss_type: grpo, importance_sampling_level: sequence}}",
        ],
    )
    methods = recipe.methods()
    assert [methods[name].importance_sampling_level for name in ("grpo", "gspo")] == ["token", "sequence"]
