"""kubesim.kubelet."""
