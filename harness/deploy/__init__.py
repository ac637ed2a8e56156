"""harness.deploy."""
