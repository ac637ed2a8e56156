"""Chaos and durability test harness for LLM checkpointing on Kubernetes StatefulSets."""

__version__ = "0.1.0"
