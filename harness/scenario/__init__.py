"""Scenarios as data and the one runner that executes them.

model (Scenario and its parts), schedule (seeded fault schedules with abstract targets),
system (what the runner needs of the system under test) with on_cluster (the StatefulSet on a
cluster) and on_processes (local writer processes), evidence (run folder, judging), runner.
"""
