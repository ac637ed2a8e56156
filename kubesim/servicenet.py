"""The cluster's service network: where ClusterIPs come from and where the cluster DNS answers.

Every cluster owns 127.<C>.0.0/16 (:mod:`kubesim.network`; ``C`` = 10 in a private network
namespace, a host-wide lease otherwise). Node ``N`` owns 127.<C>.<N>.0/24 for its pods
(:mod:`kubesim.kubelet.podip`, ``N`` ≥ 1), which leaves 127.<C>.0.0/24 to the services, as kind
gives them 10.96.0.0/16 beside the pods' 10.244.0.0/16:

* ClusterIPs are allocated from 127.<C>.0.0/24 by the API server (``kube-apiserver
  --service-cluster-ip-range``); the first address, .1, is kept for the ``kubernetes`` Service as
  upstream keeps it, and .10 for the cluster DNS — kind's (and kubeadm's) ``10.96.0.10`` is the
  tenth address of its range too;
* the cluster DNS (:mod:`kubesim.dns`, run by the control plane inside the cluster's network)
  answers on 127.<C>.0.10:53, UDP and TCP, for the zone ``cluster.local`` (kubelet
  ``clusterDNS``/``clusterDomain``, what every pod's ``/etc/resolv.conf`` names).

The control plane learns ``C`` from the network recorded in ``state.json`` and hands it to its
controllers as ``KUBESIM_CLUSTER_INDEX`` (:func:`from_env`); kubelets get it from the same record.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from pathlib import Path

from kubesim import network, state

ENV = "KUBESIM_CLUSTER_INDEX"
CLUSTER_DOMAIN = "cluster.local"
DNS_PORT = 53
DNS_HOST = 10
"""The cluster DNS is the 10th address of the service range (kind: 10.96.0.10)."""
KUBERNETES_HOST = 1
"""Upstream reserves the range's first address for the ``kubernetes`` Service of the default namespace."""


@dataclasses.dataclass(frozen=True)
class ServiceNetwork:
    index: int
    domain: str = CLUSTER_DOMAIN

    @property
    def service_cidr(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"127.{self.index}.0.0/24")

    @property
    def dns_ip(self) -> str:
        return str(self.service_cidr.network_address + DNS_HOST)

    @property
    def kubernetes_ip(self) -> str:
        return str(self.service_cidr.network_address + KUBERNETES_HOST)

    def describe(self) -> str:
        return f"services {self.service_cidr}, cluster DNS {self.dns_ip}:{DNS_PORT} ({self.domain})"


def default() -> ServiceNetwork:
    """A private cluster's (index 10): what a process that knows no better assumes."""
    return ServiceNetwork(network.PRIVATE_INDEX)


def for_state(state_dir: Path | str) -> ServiceNetwork:
    """The service network of the cluster in ``state_dir`` (a private cluster's if no network is recorded)."""
    net = network.recorded(state.Layout(Path(state_dir).resolve()))
    return ServiceNetwork(net.index) if net is not None else default()


def from_env() -> ServiceNetwork:
    """What the control plane handed its controllers (``KUBESIM_CLUSTER_INDEX``; a private cluster's if unset)."""
    raw = os.environ.get(ENV, "")
    return ServiceNetwork(int(raw)) if raw.isdigit() else default()
