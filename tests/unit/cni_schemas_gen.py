"""Regenerate roles/cni/files/schemas/kubernetes-<minor>.json from kubernetes-validate.

The cni role validates every manifest it renders against the Kubernetes OpenAPI schema of the
target minor. The full schema set is large (~5 MB per version), so only the definitions reachable
from the kinds the role renders are kept, without descriptions.

Source: the PyPI package kubernetes-validate (https://github.com/willthames/kubernetes-validate),
directory kubernetes_validate/kubernetes-json-schema/v<minor>.0-local-strict/_definitions.json
(strict = additionalProperties false: an unknown field is an error, as with kubectl --validate=strict).

Usage (not part of the test run):
    pip download --no-deps kubernetes-validate==1.37.0 -d /tmp/kv && unzip -q /tmp/kv/*.whl -d /tmp/kv
    python tests/unit/cni_schemas_gen.py /tmp/kv/kubernetes_validate/kubernetes-json-schema 1.34 1.35 1.36
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KINDS = {
    "v1/Namespace": "io.k8s.api.core.v1.Namespace",
    "v1/ServiceAccount": "io.k8s.api.core.v1.ServiceAccount",
    "v1/ConfigMap": "io.k8s.api.core.v1.ConfigMap",
    "rbac.authorization.k8s.io/v1/ClusterRole": "io.k8s.api.rbac.v1.ClusterRole",
    "rbac.authorization.k8s.io/v1/ClusterRoleBinding": "io.k8s.api.rbac.v1.ClusterRoleBinding",
    "apps/v1/DaemonSet": "io.k8s.api.apps.v1.DaemonSet",
    "apps/v1/Deployment": "io.k8s.api.apps.v1.Deployment",
    "apiextensions.k8s.io/v1/CustomResourceDefinition": (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
    ),
}
DROP = {"description", "x-kubernetes-group-version-kind", "x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key"}


def _strip(node: object, refs: set[str]) -> object:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in DROP:
                continue
            if key == "$ref":
                name = value.rsplit("/", 1)[1]
                refs.add(name)
                out[key] = name
            elif key == "properties":
                out[key] = {k: _strip(v, refs) for k, v in value.items()}
            else:
                out[key] = _strip(value, refs)
        return out
    if isinstance(node, list):
        return [_strip(v, refs) for v in node]
    return node


def extract(definitions: dict, kinds: dict[str, str]) -> dict:
    todo = list(kinds.values())
    done: dict[str, object] = {}
    while todo:
        name = todo.pop()
        if name in done:
            continue
        refs: set[str] = set()
        done[name] = _strip(definitions[name], refs)
        todo.extend(refs - done.keys())
    return {"kinds": kinds, "definitions": dict(sorted(done.items()))}


def main(argv: list[str]) -> None:
    root = Path(argv[0])
    out_dir = Path(__file__).resolve().parents[2] / "roles/cni/files/schemas"
    for minor in argv[1:]:
        src = root / f"v{minor}.0-local-strict/_definitions.json"
        data = extract(json.loads(src.read_text())["$defs"], KINDS)
        data["source"] = f"kubernetes-validate 1.37.0, kubernetes-json-schema/v{minor}.0-local-strict"
        (out_dir / f"kubernetes-{minor}.json").write_text(
            json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
