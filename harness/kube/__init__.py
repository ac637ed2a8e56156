"""harness.kube: the only package of the harness that imports the kubernetes client.

client (an ApiClient per kubeconfig/context), models (offline manifest validation), apply
(create-or-update, delete), preflight (checks before creating anything), wait (deadline waits).
"""
