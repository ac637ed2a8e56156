"""A locust LoadTestShape that follows ``--ckpt-stages`` (see :mod:`harness.load.stages`).

Loaded next to the locustfile only when stages are given (``-f locustfile.py,shape.py``):
locust uses any shape class it finds and then ignores --users/--run-time, which a plain
constant load needs. Runs in a locust process only (imports locust).
"""

from __future__ import annotations

from locust import LoadTestShape

from harness.load import stages as stages_mod


class StagesShape(LoadTestShape):
    """Users and spawn rate per stage; the test ends after the last stage."""

    _stages: tuple[stages_mod.Stage, ...] | None = None

    def tick(self) -> tuple[int, float] | None:
        if self._stages is None:
            options = self.runner.environment.parsed_options if self.runner is not None else None
            self._stages = stages_mod.parse(getattr(options, "ckpt_stages", "") or "")
        stage = stages_mod.at(self._stages, self.get_run_time())  # type: ignore[no-untyped-call]
        return None if stage is None else (stage.users, stage.spawn_rate)
