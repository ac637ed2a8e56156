"""harness.clusters."""
