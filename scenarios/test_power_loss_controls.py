"""Negative controls: a node power loss catches a writer that skips an fsync, through the same checkers.

A fault that every writer survives proves nothing about the writer. These runs deploy writers
told to skip one step of the publish protocol (``WRITER_UNSAFE_SKIP``, the writer's negative-control
switch; never settable by a deploy flag) on the embedded cluster's `lazy` class, cut the power of
one node mid-write twice, and require the checkers to judge the run INVALID — acknowledged
checkpoints lost or torn — where scenarios/test_power_loss.py, the same run with the correct
writer, is valid. Together: the power-loss fault can tell a writer that fsyncs from one that does not.

Set up so each control can fail: ``parent-fsync`` runs with keep-last 0, since with retention the
reaper's own parent fsync makes the previous publish durable too (docs/durability.md). SIGKILL,
pod kills and node crashes keep the page cache, so none of them catches these writers
(tests/kubesim/lazyfs/test_writer_power_loss.py shows the same controls on a bare mount).
Extended (about 40 s each): ``pytest scenarios -m extended -k controls``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from harness.scenario import model, schedule

pytestmark = [pytest.mark.extended]

#: skipped step -> keep_last that lets it be caught
CONTROLS: dict[str, str] = {"file-fsync": "3", "tmpdir-fsync": "3", "parent-fsync": "0"}


def control(step: str) -> model.Scenario:
    return model.Scenario(
        name=f"power-loss-control-{step}",
        claim=__doc__ or "",
        deploy={"replicas": "2", "storage_class": "lazy", "keep_last": CONTROLS[step]},
        writer_unsafe_skip=(step,),
        faults={"power-loss": model.Fault("power-loss", "its node lost power: back when it boots again", hold_s=1.0)},
        schedule=lambda ctx: schedule.repeat(ctx.seed, "power-loss", schedule.ordinals("node-of", ctx.replicas), 2,
                                             delay_s=(1.5, 3.0)),
        load=model.LoadProfile(tail_s=3.0),
    )


@pytest.mark.parametrize("step", list(CONTROLS))
def test_power_loss_catches_a_writer_that_skips_a_sync(run_scenario: Callable[..., object], step: str) -> None:
    with pytest.raises(AssertionError) as failed:
        run_scenario(control(step))
    verdicts = str(failed.value)
    print(f"\nwriter skipping {step} under power loss: {verdicts}", flush=True)
    durability = re.search(r"durability: .*?(\d+) lost, (\d+) torn", verdicts)
    assert durability is not None, f"the checkers did not fault the durability of a writer skipping {step}: {verdicts}"
    lost, torn = int(durability.group(1)), int(durability.group(2))
    assert lost + torn > 0, f"a writer skipping {step} lost nothing across two power losses: {verdicts}"
