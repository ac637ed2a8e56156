"""kubesim's process kubelet: one OS process per node, running pods as real process groups.

Modules, one job each: ``__main__`` (CLI), ``manager`` (node + pod watch + workers), ``node``
(Node object, status, Lease heartbeat), ``pods`` (a pod worker: sync loop, restarts, deletion,
status), ``admission`` (what the node refuses), ``volumes`` (volumes as host directories),
``envvars`` (env + downward API), ``containers`` (launching shims, containers.json),
``sandbox`` (the shim: namespaces, root, exec), ``probes``, ``backoff``, ``podip``, ``status``
(phase and conditions), ``bench`` (pod start latency). See kubesim/README.md, "Part 2".
"""
