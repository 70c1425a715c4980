"""Kubernetes NetworkPolicy semantics, evaluated here: a model (no CNI enforces policies in this sandbox), written
from the Kubernetes API reference: a pod no policy of a direction selects is open in that direction; otherwise some
rule of a selecting policy must allow the peer and the port; a connection needs the client's egress and the server's
ingress."""

import ipaddress


_OPERATORS = {"In": lambda value, values: value in values, "NotIn": lambda value, values: value not in values,
              "Exists": lambda value, _: value is not None, "DoesNotExist": lambda value, _: value is None}


def selects(selector, labels):
    """A label selector (an empty one selects everything)."""
    if all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()):
        return all(_OPERATORS[e["operator"]](labels.get(e["key"]), e.get("values") or [])
                   for e in selector.get("matchExpressions") or [])
    return False


def _peer_matches(rule_peer, peer, own_namespace):
    if "ipBlock" in rule_peer:
        block = rule_peer["ipBlock"]
        return "ip" in peer and ipaddress.ip_address(peer["ip"]) in ipaddress.ip_network(block["cidr"]) and not any(
            ipaddress.ip_address(peer["ip"]) in ipaddress.ip_network(cidr) for cidr in block.get("except") or [])
    if "ip" in peer:
        return False
    if "namespaceSelector" in rule_peer:
        ns_ok = selects(rule_peer["namespaceSelector"], {"kubernetes.io/metadata.name": peer["ns"]})
    else:
        ns_ok = peer["ns"] == own_namespace
    return ns_ok and selects(rule_peer.get("podSelector") or {}, peer["labels"])


def _side_allows(policies, pod, other, port, protocol, direction):
    """Kubernetes semantics: a pod no policy of this direction selects is open; otherwise some rule must allow."""
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [p for p in policies if p["metadata"]["namespace"] == pod["ns"]
                 and direction in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], pod["labels"])]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            peers_ok = not rule.get(peers_key) or any(_peer_matches(r, other, pod["ns"]) for r in rule[peers_key])
            ports_ok = not rule.get("ports") or any(r.get("port") == port and r.get("protocol", "TCP") == protocol
                                                     for r in rule["ports"])
            if peers_ok and ports_ok:
                return True
    return False


def reachable(policies, source, target, port, protocol="TCP"):
    """Whether `source` may open a connection to `target` (pods: {"ns", "labels"}; outside addresses: {"ip"})."""
    egress_ok = "ip" in source or _side_allows(policies, source, target, port, protocol, "Egress")
    ingress_ok = "ip" in target or _side_allows(policies, target, source, port, protocol, "Ingress")
    return egress_ok and ingress_ok


