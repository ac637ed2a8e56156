"""harness.clusters: where scenarios run.

base (the Cluster protocol, capabilities, errors), embedded (kubesim through its CLI), existing
(a kubeconfig + context), factory (settings -> cluster). A kind.py (pytest-kind) fits the same
protocol: create/delete in start/stop, kubeconfig from KindCluster, reach "port-forward".
"""
