"""Ablation of transfer's learning components, replayed offline on engines' saved states.

Used by ``benchmarks/transfer.py`` after its live run (and runnable on its
output: ``python benchmarks/ablation.py benchmarks/out/transfer.json``).  For
every table's saved :class:`~ruvector_dag.engine.learner.TableLearner`:

* the *learned* queries (the families' first halves) and the *held-out*
  ones (second halves, the transfer-on run) that have a verdict are taken
  with their default plans' embeddings (every attention mechanism's);
* for each configuration (everything on; each component off in turn;
  transfer off), a fresh :class:`~ruvector_dag.engine.transfer.ArmTransfer`
  learns the learned queries' verdicts in the order they came and proposes
  an arm for each held-out query: right when its users measured that arm
  clearly faster (or, proposing nothing, when no arm was);
* forgetting: the adapter learns family set A, then set B alone (A's
  queries stay voters, as in the engine), and predicts A's held-out queries
  before and after.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ruvector_dag.engine.learner import CANONICAL_MECHANISM, TableLearner
from ruvector_dag.engine.transfer import ArmTransfer, TransferConfig, Voter, predicted

#: configuration name -> the switches (benchmarks/transfer.py's ablation table)
CONFIGS: dict[str, TransferConfig] = {
    "all on": TransferConfig(),
    "patterns off": TransferConfig(patterns=False),
    "MicroLoRA off": TransferConfig(adapter=False),
    "EWC++ off": TransferConfig(ewc=False),
    "attention off": TransferConfig(attention=False),
    "transfer off": TransferConfig(enabled=False),
}
#: Replays per configuration (seeds of the adapter's initialisation and epoch order).
SEEDS = 5


def _voters(learner: TableLearner, ids: set[int]) -> list[Voter]:
    return [v for v in learner.voters() if v.query_id in ids]


def _train(transfer: ArmTransfer, bank: Any, voters: list[Voter], pool: list[Voter] | None = None) -> None:
    """Learn ``voters``' verdicts in order, each against ``pool`` and the voters learned before it."""
    seen: list[Voter] = list(pool or [])
    for v in voters:
        seen.append(v)
        transfer.learn(bank, v, seen)


def _accuracy(transfer: ArmTransfer, bank: Any, targets: list[Voter], pool: list[Voter]) -> float:
    """Share of targets whose proposal (or its absence) was right."""
    if not targets:
        return float("nan")
    ok = 0
    for h in targets:
        p = transfer.propose(bank, h.embeddings, [v for v in pool if v.query_id != h.query_id])
        ok += int(predicted(p.arm if p is not None else 0, h.good))
    return ok / len(targets)


def _fresh(learner: TableLearner, config: TransferConfig, seed: int) -> ArmTransfer:
    return ArmTransfer(learner.transfer.adapter.dim, learner.mechanisms, CANONICAL_MECHANISM, config, seed=seed)


def run_ablation(states: dict[str, bytes], families: dict[int, str], learned: set[int],
                 held: set[int]) -> dict[str, Any]:
    """The ablation table: per configuration, held-out accuracy (mean and range over SEEDS replays)
    and, for the first replay, how many proposals were right, wrong or absent; then forgetting."""
    learners = [TableLearner.from_state_bytes(s) for s in states.values()]
    out: dict[str, Any] = {}
    for name, config in CONFIGS.items():
        accs: list[float] = []
        counts = {"proposed_right": 0, "proposed_wrong": 0, "none_right": 0, "none_wrong": 0}
        for seed in range(SEEDS):
            correct = n = 0
            for learner in learners:
                train, targets = _voters(learner, learned), _voters(learner, held)
                if not targets:
                    continue
                transfer = _fresh(learner, config, seed)
                _train(transfer, learner.bank, train)
                for h in targets:
                    p = transfer.propose(learner.bank, h.embeddings, train)
                    ok = predicted(p.arm if p is not None else 0, h.good)
                    correct += int(ok)
                    n += 1
                    if seed == 0:
                        key = ("proposed_" if p is not None else "none_") + ("right" if ok else "wrong")
                        counts[key] += 1
            accs.append(correct / n if n else float("nan"))
        out[name] = {"accuracy_mean": float(np.mean(accs)), "accuracy_min": float(np.min(accs)),
                     "accuracy_max": float(np.max(accs)), **counts}
    out["forgetting"] = forgetting(learners, families, learned, held)
    return out


def forgetting(learners: list[TableLearner], families: dict[int, str], learned: set[int],
               held: set[int]) -> dict[str, Any]:
    """Accuracy on family set A's held-out queries after learning A, then after learning set B alone
    (A's queries still vote: only what the adapter and the mechanism selection learned can be lost)."""
    result: dict[str, Any] = {}
    for ewc in (True, False):
        before: list[float] = []
        after: list[float] = []
        for seed in range(SEEDS):
            for learner in learners:
                train = _voters(learner, learned)
                names = sorted({families.get(v.query_id, "?") for v in train})
                if len(names) < 2:
                    continue
                set_a = set(names[: len(names) // 2])
                a = [v for v in train if families.get(v.query_id) in set_a]
                b = [v for v in train if families.get(v.query_id) not in set_a]
                targets = [v for v in _voters(learner, held) if families.get(v.query_id) in set_a]
                transfer = _fresh(learner, replace(TransferConfig(), ewc=ewc), seed)
                _train(transfer, learner.bank, a)
                transfer.end_cycle()
                before.append(_accuracy(transfer, learner.bank, targets, a))
                for _ in range(3):  # the new families fill the adapter's epochs for a while
                    _train(transfer, learner.bank, b)
                    transfer.end_cycle()
                after.append(_accuracy(transfer, learner.bank, targets, a))
        result["with EWC++" if ewc else "without EWC++"] = {
            "accuracy_before": float(np.nanmean(before)) if before else None,
            "accuracy_after": float(np.nanmean(after)) if after else None}
    return result


def load(directory: Path) -> tuple[dict[str, bytes], dict[int, str], set[int], set[int]]:
    """What benchmarks/transfer.py saved for the replay: the states and which query is which."""
    meta = json.loads((directory / "queries.json").read_text())
    states = {p.stem: p.read_bytes() for p in sorted(directory.glob("*.npz"))}
    return (states, {int(k): v for k, v in meta["families"].items()}, {int(q) for q in meta["learned"]},
            {int(q) for q in meta["held"]})


def save_inputs(directory: Path, states: dict[str, bytes], families: dict[int, str], learned: set[int],
                held: set[int]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for relid, state in states.items():
        (directory / f"{relid}.npz").write_bytes(state)
    (directory / "queries.json").write_text(json.dumps({"families": {str(k): v for k, v in families.items()},
                                                        "learned": sorted(learned), "held": sorted(held)}))


def main() -> int:
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/out/transfer_states")
    result = run_ablation(*load(directory))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
