"""kubesim's cluster DNS: CoreDNS's ``kubernetes`` plugin, small, inside the cluster's network.

:mod:`kubesim.dns.wire` reads and writes DNS messages, :mod:`kubesim.dns.records` decides the
answers from Services and EndpointSlices, :mod:`kubesim.dns.server` serves them over UDP and
TCP; the ``coredns`` controller (:mod:`kubesim.controllers.clusterdns`) runs it in the control
plane on the cluster DNS address of :mod:`kubesim.servicenet`. No dependency: the subset of the
wire format a cluster DNS needs (one question; A, AAAA, SRV, PTR, TXT, SOA, NS answers; EDNS0's
buffer size) is a few hundred lines, and owning it keeps the answers exactly CoreDNS's.
"""
