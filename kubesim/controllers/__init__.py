"""kubesim.controllers."""
