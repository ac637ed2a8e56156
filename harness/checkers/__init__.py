"""harness.checkers."""
