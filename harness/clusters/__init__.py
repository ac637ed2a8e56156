"""harness.clusters: where scenarios run.

base (the Cluster protocol, capabilities, errors), embedded (kubesim through its CLI), kind
(created or reused through pytest-kind; node crash and container kill through Docker and the
node's runtime), existing (a kubeconfig + context), access (what the cluster's authorization
lets a scenario do), factory (settings -> cluster).
"""
