"""kubesim.apiserver."""
