"""The smoke recipe through the CLI on the tiny model: the policies must really improve on gold."""

import json
import subprocess
import sys

import pytest

from .helpers import REPO


@pytest.mark.ppo
def test_ppo_and_dpo_beat_the_reference_on_held_out_gold(smoke_run):
    _, metrics = smoke_run
    policies = metrics["policies"]
    reference = policies["reference"]["gold_mean"]
    for name in ("ppo", "dpo"):
        assert policies[name]["gold_mean"] > reference + 0.15, (name, policies[name], reference)
        assert policies[name]["win_rate_vs_reference"] > 0.6
        assert policies[name]["kl_mean"] > 0
    assert policies["reference"]["kl_mean"] == 0.0 and policies["reference"]["win_rate_vs_reference"] == 0.5


@pytest.mark.ppo
def test_reward_model_generalises_to_held_out_prompts(smoke_run):
    _, metrics = smoke_run
    assert metrics["reward_model"]["heldout_accuracy"] >= 0.75


@pytest.mark.ppo
def test_metrics_json_contract(smoke_run):
    _, metrics = smoke_run
    assert metrics["schema_version"] == 3
    assert metrics["methods"] == {"ppo": "ppo", "dpo": "dpo"}
    assert set(metrics["policies"]) == {"reference", "ppo", "dpo"}
    for policy in metrics["policies"].values():
        assert {"gold_mean", "reward_model_mean", "kl_mean", "win_rate_vs_reference", "mean_length_words", "n"} <= set(
            policy
        )
        assert policy["n"] == policy["wins"] + policy["ties"] + policy["losses"] > 0


def markdown_tables(text: str) -> list[list[list[str]]]:
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            current.append([cell.strip() for cell in line.strip("|").split(" | ")])
        elif current and not line.startswith("|---"):
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


def html_tables(text: str) -> list[list[list[str]]]:
    from html.parser import HTMLParser

    class Tables(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tables, self.cell = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.tables.append([])
            elif tag == "tr":
                self.tables[-1].append([])
            elif tag in ("td", "th"):
                self.cell = ""

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.tables[-1][-1].append(self.cell.strip())
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

    parser = Tables()
    parser.feed(text)
    return parser.tables


@pytest.mark.ppo
def test_report_md_html_and_metrics_json_agree(smoke_run):
    run_dir, metrics = smoke_run
    md = markdown_tables((run_dir / "report.md").read_text())
    page = html_tables((run_dir / "report.html").read_text())
    assert md == page, "report.md and report.html show the same tables"
    policies = next(t for t in md if t[0][:2] == ["policy", "gold mean"])
    for row in policies[1:]:
        m = metrics["policies"][row[0]]
        assert float(row[1]) == pytest.approx(m["gold_mean"], abs=5e-4)
        assert row[2] == f"[{m['gold_ci95'][0]:.3f}, {m['gold_ci95'][1]:.3f}]"
        if row[0] != "reference":
            gain = m["gold_gain"]
            assert row[3] == f"{gain['mean']:+.3f} [{gain['low']:+.3f}, {gain['high']:+.3f}]"
        assert float(row[4]) == pytest.approx(m["reward_model_mean"], abs=5e-4)
        assert float(row[6]) == pytest.approx(m["kl_mean"], abs=5e-4)
        assert float(row[7]) == pytest.approx(m["win_rate_vs_reference"], abs=5e-4)
        assert row[-1] == ("" if row[0] == "reference" else m["overoptimization"]["state"])
    best_of_n = next(t for t in md if t[0][0] == "N")
    for row in best_of_n[1:]:
        b = metrics["best_of_n"][row[0]]
        assert [float(row[1]), float(row[4])] == pytest.approx([b["gold_mean"], b["kl_bound"]], abs=5e-4)
    costs = next(t for t in md if t[0][:2] == ["method", "training generations"])
    for row in costs[1:]:
        assert int(row[1]) == metrics["costs"][row[0]]["training_generations"]
    assert f"**{metrics['reward_model']['heldout_accuracy']:.3f}**" in (run_dir / "report.md").read_text()
    assert (
        "<b>" + f"{metrics['reward_model']['heldout_accuracy']:.3f}" + "</b>" in (run_dir / "report.html").read_text()
    )


@pytest.mark.ppo
def test_report_has_every_part_and_plot(smoke_run):
    run_dir, metrics = smoke_run
    report = (run_dir / "report.md").read_text()
    for heading in (
        "Best-of-N",
        "Reward model",
        "During training",
        "Cost per method",
        "Length and diversity",
        "Samples",
    ):
        assert f"## {heading}" in report
    for plot in ("frontier", "training_curves", "trainer_logs", "win_rates", "lengths", "reward_model_accuracy"):
        assert (run_dir / "plots" / f"{plot}.png").stat().st_size > 10_000
        assert f"(plots/{plot}.png)" in report
    assert set(metrics["training_curves"]) == {"ppo", "dpo"}
    assert metrics["implicit_rewards"]["dpo"]["heldout_accuracy"] > 0.6
    assert metrics["reward_model"]["bayes_accuracy_vs_labels"] == 1.0, "no label noise in the smoke recipe"
    bon = metrics["best_of_n"]
    assert bon["16"]["gold_mean"] > bon["1"]["gold_mean"] + 0.3, "picking by the learned reward helps"


@pytest.mark.ppo
def test_report_command_rebuilds_the_same_metrics(smoke_run, tmp_path):
    import shutil

    run_dir, metrics = smoke_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy, symlinks=True)
    (copy / "metrics.json").unlink()
    result = subprocess.run([sys.executable, "-m", "rlhf_recipes", "report", str(copy)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads((copy / "metrics.json").read_text()) == metrics
    compare = subprocess.run(
        [sys.executable, "-m", "rlhf_recipes", "compare", str(run_dir), str(copy)], capture_output=True, text=True
    )
    assert compare.returncode == 0, compare.stderr
    assert f"| {run_dir} (seed 0) | ppo |" in compare.stdout, "a copy is the same run: one replicate, said so"
    assert f"{copy} (seed 0) is the same run as {run_dir} (seed 0)" in compare.stdout
    assert "counted once, since a copy is not a replicate" in compare.stdout
    assert "# Gold judge: sentiment (1 run)" in compare.stdout and "Over the 2 runs" not in compare.stdout


@pytest.mark.ppo
def test_a_second_run_reuses_every_unchanged_stage(smoke_run, tmp_path):
    import shutil

    run_dir, metrics = smoke_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy, symlinks=True)
    result = subprocess.run(
        [sys.executable, "-m", "rlhf_recipes", "run", "recipes/smoke.yaml", "dpo.beta=0.2", "--output-dir", str(copy)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    stages = json.loads((copy / "run.json").read_text())["stages"]
    assert [name for name, info in stages.items() if not info["reused"]] == ["dpo", "evaluation"]
    again = json.loads((copy / "metrics.json").read_text())
    assert again["policies"]["ppo"] == metrics["policies"]["ppo"], "PPO was reused, and evaluated with the same seed"


@pytest.mark.ppo
def test_run_directory_holds_every_artifact(smoke_run):
    from datasets import load_from_disk

    run_dir, _ = smoke_run
    for name in ("recipe.resolved.yaml", "versions.json", "run.json", "report.md", "evaluation/generations.jsonl"):
        assert (run_dir / name).is_file(), name
    for model in ("model", "sft", "reward_model", "ppo", "dpo"):
        assert (run_dir / model / "model.safetensors").is_file(), model
        assert not list((run_dir / model).glob("*.bin")), "weights are safetensors, nothing is pickled"
    pairs = load_from_disk(str(run_dir / "preferences/dataset"))
    assert set(pairs) == {"train", "heldout"}
    assert {"prompt", "chosen", "rejected"} <= set(pairs["train"].column_names)
    assert not set(pairs["train"]["prompt"]) & set(pairs["heldout"]["prompt"])
    assert not list(run_dir.glob(".*partial"))


@pytest.mark.ppo
def test_every_trained_parameter_changed(smoke_run):
    from safetensors.torch import load_file

    run_dir, _ = smoke_run
    for before, after in (("model", "sft"), ("sft", "ppo"), ("sft", "dpo")):
        old, new = load_file(run_dir / before / "model.safetensors"), load_file(run_dir / after / "model.safetensors")
        unchanged = [name for name in old if (old[name] == new[name]).all()]
        assert not unchanged, f"{after}: {unchanged}"
