"""Host names, addresses and cluster networks: the smcp.platform collection's rules (plugins/module_utils/netrules.py).

The playbooks' preflight checks call the same functions, so a value the API stores is a value the
playbooks accept. Each helper raises ValueError with the rule's sentence (value, what is wrong, the
fix); pydantic puts the field name in front.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from smcp_api import collection


def rules() -> ModuleType:
    return collection.module_utils("netrules")


def _first(findings: list[Any], with_field: bool = False) -> None:
    if findings:
        raise ValueError(findings[0].message() if with_field else findings[0].detail())


def hostname(value: str) -> str:
    """A host name the playbooks can make a Kubernetes node name (lower-case RFC 1123, at most 64 characters)."""
    _first(rules().check_hostname(value))
    return value


def address(value: str) -> str:
    """An IP address of one machine, or a DNS name (not all-numeric such as 999.1.1.1)."""
    _first(rules().check_address(value))
    return value


def address_key(value: str) -> str:
    """The form two addresses compare in (normalised IP, lower-case DNS name)."""
    return str(rules().address_key(value))


def network(field: str, value: str) -> str:
    """One pod or service network on its own: syntax, host bits, reserved space, service size."""
    mod = rules()
    net, findings = mod.parse_cidr(value, field)
    _first(findings)
    _first(mod.reserved_findings([net], field))
    if field == "service_cidr":
        _first(mod.service_size_findings([net], field))
    return str(net)


def _mask(options: dict[str, Any], key: str, default: int) -> int:
    value = options.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def cluster_networks(pod_cidr: str, service_cidr: str, nodes: int, options: dict[str, Any]) -> None:
    """Pod and service networks together: one family, room for every node's range, disjoint.

    The node masks are the preflight role's (options.preflight_node_cidr_mask_v4/_v6, kubeadm's /24 and /64).
    """
    mod = rules()
    _first(
        mod.check_networks(
            pod_cidr,
            service_cidr,
            nodes=nodes,
            node_mask_v4=_mask(options, "preflight_node_cidr_mask_v4", mod.NODE_MASK[4]),
            node_mask_v6=_mask(options, "preflight_node_cidr_mask_v6", mod.NODE_MASK[6]),
        ),
        with_field=True,
    )
