"""harness.workload."""
