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

#: configuration name -> the switches (benchmarks/transfer.py's ablation table).  The default (the
#: settings': patterns only) and each learning component added to it, everything on, and what is left
#: without the patterns.
_ALL = TransferConfig(patterns=True, adapter=True, ewc=True, attention=True)
CONFIGS: dict[str, TransferConfig] = {
    "default (patterns)": TransferConfig(),
    "+ MicroLoRA (with EWC++)": replace(TransferConfig(), adapter=True, ewc=True),
    "+ MicroLoRA (plain SGD)": replace(TransferConfig(), adapter=True, ewc=False),
    "+ attention selection": replace(TransferConfig(), attention=True),
    "everything on": _ALL,
    "patterns off": replace(TransferConfig(), patterns=False),
    "patterns off, everything else on": replace(_ALL, patterns=False),
    "transfer off": replace(TransferConfig(), enabled=False),
}
#: Replays per configuration (seeds of the adapter's initialisation and epoch order).
SEEDS = 3


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


def _targets(learner: TableLearner, queries: dict[int, tuple[str, str]]) -> list[Voter]:
    """The table's queries of the benchmark that got a verdict, in the order the engine saw them."""
    return [v for v in learner.voters() if v.query_id in queries]


def _pool(target: Voter, voters: list[Voter], queries: dict[int, tuple[str, str]]) -> list[Voter]:
    """What the target is predicted from: every other voter but its twin (the same statement)."""
    sql = queries[target.query_id][1]
    return [v for v in voters if queries[v.query_id][1] != sql]


def run_ablation(states: dict[str, bytes], queries: dict[int, tuple[str, str]]) -> dict[str, Any]:
    """The ablation table: per configuration, leave-one-out accuracy of the arm proposed for each
    query with a verdict (mean and range over SEEDS replays) and, for the first replay, how many
    proposals were right, wrong or absent; then forgetting.  ``queries`` is keyed by query id as
    EXPLAIN shows it (signed) or as the engine keeps it (unsigned)."""
    queries = {qid % (1 << 64): v for qid, v in queries.items()}
    learners = [TableLearner.from_state_bytes(s) for s in states.values()]
    out: dict[str, Any] = {}
    for name, config in CONFIGS.items():
        accs: list[float] = []
        transferred: list[float] = []  # share of the queries that needed an arm which transfer fixed
        counts = {"proposed_right": 0, "proposed_wrong": 0, "none_right": 0, "none_wrong": 0}
        for seed in range(SEEDS):
            correct = n = needing = fixed = 0
            for learner in learners:
                voters = _targets(learner, queries)
                for target in voters:
                    pool = _pool(target, voters, queries)
                    transfer = _fresh(learner, config, seed)
                    _train(transfer, learner.bank, pool)
                    p = transfer.propose(learner.bank, target.embeddings, pool)
                    ok = predicted(p.arm if p is not None else 0, target.good)
                    correct += int(ok)
                    n += 1
                    needing += int(bool(target.good))
                    fixed += int(bool(target.good) and ok)
                    if seed == 0:
                        counts[("proposed_" if p is not None else "none_") + ("right" if ok else "wrong")] += 1
            accs.append(correct / n if n else float("nan"))
            transferred.append(fixed / needing if needing else float("nan"))
        out[name] = {"accuracy_mean": float(np.mean(accs)), "accuracy_min": float(np.min(accs)),
                     "accuracy_max": float(np.max(accs)), "fixed_by_transfer": float(np.mean(transferred)),
                     "queries": sum(counts.values()), **counts}
    out["forgetting"] = forgetting(learners, queries)
    return out


def forgetting(learners: list[TableLearner], queries: dict[int, tuple[str, str]]) -> dict[str, Any]:
    """Leave-one-out accuracy on family A (the table's largest) after learning A, then after learning
    the table's other families alone, three times over (A's queries still vote: only what the adapter
    and the mechanism selection learned can be lost), with EWC++ and without."""
    queries = {qid % (1 << 64): v for qid, v in queries.items()}
    result: dict[str, Any] = {}
    for ewc in (True, False):
        before: list[float] = []
        after: list[float] = []
        for seed in range(SEEDS):
            for learner in learners:
                voters = _targets(learner, queries)
                names = [queries[v.query_id][0] for v in voters]
                if len(set(names)) < 2:
                    continue
                family_a = max(set(names), key=names.count)
                a = [v for v in voters if queries[v.query_id][0] == family_a]
                b = [v for v in voters if queries[v.query_id][0] != family_a]
                config = replace(_ALL, ewc=ewc)
                hits_before = hits_after = 0
                for target in a:
                    pool = _pool(target, a, queries)
                    transfer = _fresh(learner, config, seed)
                    _train(transfer, learner.bank, pool)
                    transfer.end_cycle()
                    hits_before += int(_accuracy(transfer, learner.bank, [target], pool) == 1.0)
                    for _ in range(3):
                        _train(transfer, learner.bank, b)
                        transfer.end_cycle()
                    hits_after += int(_accuracy(transfer, learner.bank, [target], pool) == 1.0)
                before.append(hits_before / len(a))
                after.append(hits_after / len(a))
        result["with EWC++" if ewc else "without EWC++"] = {
            "accuracy_before": float(np.mean(before)) if before else None,
            "accuracy_after": float(np.mean(after)) if after else None}
    return result


def load(directory: Path) -> tuple[dict[str, bytes], dict[int, tuple[str, str]]]:
    """What benchmarks/transfer.py saved for the replay: the states, and each query's family and text."""
    meta = json.loads((directory / "queries.json").read_text())
    states = {p.stem: p.read_bytes() for p in sorted(directory.glob("*.npz"))}
    return states, {int(k) % (1 << 64): (v[0], v[1]) for k, v in meta.items()}


def save_inputs(directory: Path, states: dict[str, bytes], queries: dict[int, tuple[str, str]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.npz"):
        old.unlink()
    for relid, state in states.items():
        (directory / f"{relid}.npz").write_bytes(state)
    (directory / "queries.json").write_text(json.dumps({str(k): list(v) for k, v in queries.items()}))


def main() -> int:
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/out/transfer_states")
    result = run_ablation(*load(directory))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
