"""Generate tests/data/example-run: a small stored run that every checker judges valid.

Three ordinals write checkpoints under keep-last-3 retention; the nemesis kills ordinal 1's
pod (declared expected-unavailable) and heals; probes sample every ordinal; one write to
ordinal 1 times out but was published (recovered), one write to ordinal 2 fails and is not.
Deterministic: re-running it reproduces the committed files byte for byte (a unit test
checks that). ``--broken lost`` removes ordinal 0's newest acknowledged checkpoint from the
facts, which the durability checker must call invalid.

    .venv/bin/python tests/data/make_example_run.py [OUT_DIR] [--broken lost]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from harness import facts, history, store
from harness.checkers import synth

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "example-run"
ORDINALS = range(3)
KEEP_LAST = 3
ROUNDS = 12


def build(broken: str | None = None) -> tuple[list[history.Op], facts.RunFacts]:
    b = synth.HistoryBuilder(t0=1_796_000_000.0)
    step = {o: 0 for o in ORDINALS}

    def probe_all() -> None:
        for o in ORDINALS:
            down = killed and o == 1
            b.probe(o, ready=not down, latest_step=None if down else (served[o] or None),
                    outcome="fail" if down else "ok")

    served = {o: 0 for o in ORDINALS}
    killed = False
    for rnd in range(ROUNDS):
        if rnd == 5:
            b.fault_start("pod-kill", ["pod/ckpt-1"], {"1": "its pod was killed and restarts"})
            killed = True
        if rnd == 7:
            b.fault_stop("pod-kill", ["pod/ckpt-1"])
            killed = False
        for o in ORDINALS:
            if killed and o == 1:
                continue
            step[o] += 1
            if rnd == 10 and o == 1:
                b.write(o, step[o], "info", publish=True, latency=0.2)  # timed out, but it landed
            elif rnd == 9 and o == 2:
                b.write(o, step[o], "fail")
            else:
                b.write(o, step[o], "ok", latency=0.03 + 0.01 * o)
            if rnd != 9 or o != 2:
                served[o] = step[o]
            b.advance(0.05)
        probe_all()
        b.advance(0.4)
    for o in ORDINALS:  # the writer's own retention: only the newest KEEP_LAST survive
        keep = sorted(c.step for c in b.checkpoints[o] if c.valid)[-KEEP_LAST:]
        b.checkpoints[o] = [c for c in b.checkpoints[o] if c.step in keep]
    if broken == "lost":
        b.unpublish(0, max(c.step for c in b.checkpoints[0]))
    elif broken is not None:
        raise SystemExit(f"unknown --broken variant {broken!r}; known: lost")
    return b.ops, b.facts(ORDINALS, keep_last=KEEP_LAST)


def _file_for(op: history.Op) -> str:
    if op.process.startswith("probe-"):
        return "probe"
    if op.process == "nemesis":
        return "nemesis"
    return "locust-w0"


def write(out: Path, broken: str | None = None) -> Path:
    ops_, run_facts = build(broken)
    if out.exists():
        shutil.rmtree(out)
    (out / history.HISTORY_DIR).mkdir(parents=True)
    files: dict[str, list[str]] = {}
    for op in ops_:  # each file numbers its own ops, as a HistoryWriter would
        lines = files.setdefault(_file_for(op), [])
        lines.append(history.Op(len(lines), op.time, op.mono, op.type, op.process, op.f, op.value,
                                op.error).to_json())
    for name, lines in files.items():
        (out / history.HISTORY_DIR / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    (out / facts.FACTS_FILE).write_text(json.dumps(run_facts.to_dict(), indent=2, sort_keys=True) + "\n")
    info = store.RunInfo(
        name=out.name, scenario="example-pod-kill", seed=20261129, cluster_kind="synthetic",
        started="2026-11-29T08:00:00Z", ended="2026-11-29T08:00:10Z",
        settings={"generated_by": "tests/data/make_example_run.py", "broken": broken},
        expectations={"availability": {"max_recovery_s": 5.0}},
        versions={"python": "3.11", "harness": "0.1.0"},
    )
    (out / store.RUN_FILE).write_text(json.dumps(info.to_dict(), indent=2, sort_keys=True) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--broken", choices=["lost"], default=None)
    args = parser.parse_args()
    print(write(args.out, args.broken))


if __name__ == "__main__":
    main()
