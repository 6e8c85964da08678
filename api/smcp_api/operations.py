"""The API's operations and the collection playbook each runs (no imports: the CLI reads it at start-up)."""

from __future__ import annotations

OPERATIONS: dict[str, str] = {
    "preflight": "preflight",
    "prepare_hosts": "prepare_hosts",
    "etcd_backup": "etcd_backup",
    "create_cluster": "cluster",
    "add_nodes": "scale",
    "remove_node": "remove_node",
    "upgrade": "upgrade",
    "reset": "reset",
    "certs": "certs",
}
"""Operation -> playbook name inside the smcp.platform collection."""
