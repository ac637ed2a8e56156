"""harness.nemesis."""
