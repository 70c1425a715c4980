"""In-cluster addresses: the Service an address a Thanos component dials names, and whether the stack declares it."""

import re

from ._workloads import Stack, namespace_of, provider_of


_SCHEME = re.compile(r"^(dnssrvnoa\+|dnssrv\+|dns\+)?([a-z]+://)?(_[a-z0-9-]+\._tcp\.)?", re.IGNORECASE)
DISCOVERED = re.compile(r"^(dns|dnssrv|dnssrvnoa|dnsdualstack)\+", re.IGNORECASE)
"""An address Thanos resolves through DNS (A or SRV records) instead of dialling as written."""


def service_of(address: str) -> tuple[str, str] | None:
    """(namespace, Service) of an in-cluster DNS address (`name.ns.svc[.cluster.local]`, SRV and pod forms too)."""
    host = _SCHEME.sub("", address).split("/", 1)[0].rsplit(":", 1)[0]
    labels = host.split(".")
    if "svc" not in labels:
        return None
    i = labels.index("svc")
    return (labels[i - 1], labels[i - 2]) if i >= 2 else None


def _in_cluster(client, address: str) -> tuple[str, str] | None:
    """(namespace, Service) an in-cluster address names (`name.ns.svc...`, SRV and pod forms, or a bare name in the
    client's namespace), or None."""
    address = DISCOVERED.sub("", address.strip())
    host = _SCHEME.sub("", address).split("/", 1)[0].rsplit(":", 1)[0]
    return service_of(address) or ((namespace_of(client), host) if host and "." not in host else None)


def declared_service(stack: Stack, client, address: str):
    """The Service the stack declares that an in-cluster address of a client names, or None."""
    target = _in_cluster(client, address)
    return stack.objects.get((provider_of(client), target[0], "Service", target[1])) if target else None
