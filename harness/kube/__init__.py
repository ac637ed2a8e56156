"""harness.kube."""
