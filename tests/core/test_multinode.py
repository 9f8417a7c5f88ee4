"""Several torchrun agents ("nodes") on one machine: static and c10d rendezvous, and a node lost and started again.

Each agent is ``tools/dist_train.sh CONFIG 1`` as a user runs it on each machine. The
agents' output goes to files and all are watched together: when one fails, the others
get a short grace and are then killed, processes and workers alike, and the test fails
with every agent's output. (Reading one agent's pipe to its end first waited 300 s in
torchrun's exit barrier when the other agent had died.)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import REPO, assert_same_weights, free_port, trainyard_env

from trainyard.checkpoint import read_checkpoint
from trainyard.resume_check import compare_states

TINY = "tests/configs/tiny.py"
OPTIONS = [
    "model.dropout=0.3",  # randomness in every step: a resumed RNG state must be the right one
    "train_cfg=dict(_delete_=True, type='IterBasedTrainLoop', max_iters=6, val_interval=1000)",
    "default_hooks.checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False, max_keep_ckpts=2)",
    "default_hooks.logger.interval=1",
    "val_cfg=None",
    "val_dataloader=None",
    "resume=auto",
]
TAG = "TRAINYARD_TEST_AGENT"


class Agent:
    """One torchrun agent started by ``tools/dist_train.sh``, its output in a file; ``kill`` ends it and its workers."""

    def __init__(self, name: str, nproc: int, work_dir: Path, env: dict[str, str], *options: str) -> None:
        self.name, self.tag = name, uuid.uuid4().hex
        self.log = work_dir.parent / f"{work_dir.name}-{name}.log"
        with self.log.open("w") as output:
            self.process = subprocess.Popen(
                ["bash", "tools/dist_train.sh", TINY, str(nproc), "--work-dir", str(work_dir), "--cfg-options", *OPTIONS, *options],
                cwd=REPO, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
                env=trainyard_env({**env, "OMP_NUM_THREADS": "1", TAG: self.tag}),  # pinned threads: bit-exact sums
            )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, chars: int = 2500) -> str:
        return f"--- {self.name} (exit {self.process.poll()}) ---\n{self.output[-chars:]}"

    def kill(self) -> None:
        """SIGKILL the agent and every process it started: torchrun puts its workers in sessions of their own,
        and they outlive a killed agent, so they are found by the tag in their environment."""
        needle = f"{TAG}={self.tag}".encode()
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if needle in (proc / "environ").read_bytes().split(b"\0"):
                        os.kill(int(proc.name), signal.SIGKILL)
                except OSError:  # gone already, or not ours
                    pass
        self.process.wait()


def wait_for(agents: list[Agent], timeout: float = 120, grace: float = 15) -> None:
    """Wait until every agent has ended. After the first failure the others have ``grace`` seconds to end
    (torchrun stops a job's other nodes itself); then, or at ``timeout``, everything left is killed and the test
    fails with every agent's output."""
    deadline = time.monotonic() + timeout
    while any(agent.process.poll() is None for agent in agents):
        if any(agent.process.poll() not in (None, 0) for agent in agents):
            deadline = min(deadline, time.monotonic() + grace)
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for agent in agents:
        agent.kill()
    failed = [agent for agent in agents if agent.process.returncode != 0]
    if failed:
        pytest.fail("agents failed or hung:\n" + "\n".join(agent.tail() for agent in agents), pytrace=False)


def wait_until(condition, agents: list[Agent], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline or any(agent.process.poll() is not None for agent in agents):
            for agent in agents:
                agent.kill()
            pytest.fail("waited in vain:\n" + "\n".join(agent.tail() for agent in agents), pytrace=False)
        time.sleep(0.1)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def c10d_env(port: int) -> dict[str, str]:
    return {"NNODES": "2", "RDZV_ENDPOINT": f"127.0.0.1:{port}", "RDZV_ID": "multinode-test"}


def start_c10d_nodes(work_dir: Path, env: dict[str, str], env_of_second: dict[str, str], *options: str) -> list[Agent]:
    """Two c10d agents; the first is started alone until it hosts the rendezvous store, so that losing the
    second loses no store."""
    first = Agent("node-a", 1, work_dir, env, *options)
    port = int(env["RDZV_ENDPOINT"].rsplit(":", 1)[1])
    wait_until(lambda: listening(port), [first])
    return [first, Agent("node-b", 1, work_dir, {**env, **env_of_second}, *options)]


@pytest.fixture(scope="module")
def one_node(tmp_path_factory) -> Path:
    """The reference: one agent with 2 processes."""
    work_dir = tmp_path_factory.mktemp("multinode") / "one-node"
    agent = Agent("node", 2, work_dir, {"PORT": str(free_port())})
    wait_for([agent])
    return work_dir


@pytest.fixture(scope="module")
def static_nodes(tmp_path_factory) -> tuple[Path, list[Agent]]:
    """``NNODES=2 NODE_RANK=0|1 tools/dist_train.sh CONFIG 1``: two agents, static rendezvous."""
    work_dir = tmp_path_factory.mktemp("multinode") / "static"
    port = str(free_port())
    agents = [Agent(f"node-{rank}", 1, work_dir, {"NNODES": "2", "NODE_RANK": str(rank), "MASTER_ADDR": "127.0.0.1", "PORT": port})
              for rank in (0, 1)]
    wait_for(agents)
    return work_dir, agents


@pytest.fixture(scope="module")
def c10d_nodes(tmp_path_factory) -> tuple[Path, list[Agent]]:
    """Two c10d agents on one host; the second node is killed whole (agent and worker) after iteration 4, when
    iteration 3 is the last checkpoint, and started again; the survivor's torchrun restarts its worker
    (``MAX_RESTARTS=1``) and both resume with ``resume='auto'``."""
    work_dir = tmp_path_factory.mktemp("multinode") / "c10d"
    marker, launches = work_dir.parent / "frozen", work_dir.parent / "launches"
    hooks = (f"custom_hooks=[dict(type='FreezeNodeAtIterHook', iteration=4, marker='{marker}'), "
             f"dict(type='RecordLaunchHook', out_dir='{launches}')]")
    env = {**c10d_env(free_port()), "MAX_RESTARTS": "1"}
    agents = start_c10d_nodes(work_dir, env, {"TRAINYARD_TEST_FREEZE": "1"}, hooks)
    wait_until(marker.exists, agents)
    agents[1].kill()
    restarted = Agent("node-b-restarted", 1, work_dir, env, hooks)
    wait_for([agents[0], restarted])
    return work_dir, [agents[0], agents[1], restarted]


def test_two_static_nodes_train_to_the_weights_of_one_node_with_two_processes(one_node, static_nodes):
    work_dir, agents = static_nodes
    final = read_checkpoint(work_dir / "iter_6.pth")
    assert final["meta"]["world_size"] == 2 and len(final["rng"]) == 2
    assert "world size 2" in agents[0].output and "world size 2" not in agents[1].output  # only global rank 0 logs
    reference = read_checkpoint(one_node / "iter_6.pth")
    assert_same_weights(reference["state_dict"], final["state_dict"], "two static nodes")
    assert [str(d) for d in compare_states(reference["optimizer"], final["optimizer"], "optimizer")] == []


def test_c10d_nodes_share_host_and_local_rank_and_only_global_rank_0_writes(c10d_nodes):
    work_dir, _ = c10d_nodes
    launches = [json.loads(path.read_text()) for path in (work_dir.parent / "launches").glob("*.json")]
    assert len(launches) == 4  # 2 workers, started twice
    assert {launch["local_rank"] for launch in launches} == {"0"} and len({launch["host"] for launch in launches}) == 1
    assert {launch["rank"] for launch in launches} == {0, 1}
    assert sorted(path.name for path in work_dir.iterdir() if path.is_file()) == ["iter_3.pth", "iter_6.pth", "last_checkpoint"]
    run_dirs = [path for path in work_dir.iterdir() if path.is_dir()]
    assert len(run_dirs) == 1  # the resumed run continues in the one directory rank 0 made
    steps = [json.loads(line)["step"] for line in (run_dirs[0] / "scalars.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 4, 5, 6], steps  # one writer; step 4 again after the resume from iteration 3
    assert not list(work_dir.rglob(".*tmp*"))


def test_a_lost_c10d_node_started_again_resumes_to_the_weights_of_an_uninterrupted_run(one_node, c10d_nodes):
    work_dir, agents = c10d_nodes
    assert (work_dir.parent / "frozen").exists()
    assert "resumed from" in (agents[0].output + agents[2].output)
    final, reference = read_checkpoint(work_dir / "iter_6.pth"), read_checkpoint(one_node / "iter_6.pth")
    assert final["meta"]["world_size"] == 2
    assert_same_weights(reference["state_dict"], final["state_dict"], "c10d node lost and restarted")
    assert [str(d) for d in compare_states(reference["optimizer"], final["optimizer"], "optimizer")] == []
