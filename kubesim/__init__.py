"""kubesim: an embedded Kubernetes cluster (API server, controllers, process kubelets)."""

__version__ = "0.1.0"
