"""How `rlhf run` starts several processes, and how they share batches."""

import pytest

from rlhf_recipes.config.loader import load_recipe
from rlhf_recipes.errors import RecipeError
from rlhf_recipes.run.launch import launch_command
from rlhf_recipes.runtime import distributed
from rlhf_recipes.training import trainer
from rlhf_recipes.training.trainer import per_process

from .helpers import REPO


@pytest.fixture
def smoke(in_repo, monkeypatch):
    for variable in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(variable, raising=False)
    return load_recipe(REPO / "recipes" / "smoke.yaml")


@pytest.mark.ppo
def test_one_process_needs_no_launcher(smoke):
    assert launch_command(smoke, None, None) is None
    assert launch_command(smoke, "none", 1) is None


@pytest.mark.ppo
def test_accelerate_launches_the_same_command_in_n_processes(smoke):
    command = launch_command(smoke, "accelerate", 2)
    assert command[1:3] == ["-m", "accelerate.commands.launch"] and command[-3:] == ["-m", "rlhf_recipes", "run"]
    assert command[command.index("--num_processes") + 1] == "2" and "--multi_gpu" in command
    assert int(command[command.index("--main_process_port") + 1]) > 0


@pytest.mark.ppo
def test_a_launched_process_runs_the_recipe_itself(smoke, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert launch_command(smoke, "accelerate", 2) is None


@pytest.mark.parametrize(
    "world, rank, starts", [(1, 0, [0, 10, 20, 30]), (2, 0, [0, 20]), (2, 1, [10, 30]), (3, 2, [20])]
)
def test_batches_are_dealt_round_robin(world, rank, starts, monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: world)
    monkeypatch.setattr(distributed, "rank", lambda: rank)
    assert list(distributed.batch_starts(35, 10)) == starts


def test_a_batch_is_split_evenly_or_refused(monkeypatch):
    monkeypatch.setattr(trainer, "world_size", lambda: 4)
    assert per_process(32, "dpo.batch_size") == 8
    with pytest.raises(RecipeError, match="dpo.batch_size: 30 cannot be split evenly among 4 processes"):
        per_process(30, "dpo.batch_size")
