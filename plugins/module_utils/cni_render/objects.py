# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Builders of Kubernetes objects (metadata, CRDs, RBAC, volumes, mounts, env, DaemonSets) as plain dicts."""

from __future__ import annotations


def object_meta(name, namespace=None, labels=None):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    return meta


def api_object(api_version, kind, name, namespace=None, labels=None, **body):
    obj = {"apiVersion": api_version, "kind": kind, "metadata": object_meta(name, namespace, labels)}
    obj.update(body)
    return obj


def crd(group, kind, plural, namespaced, spec_schema=None, short_names=None):
    spec = spec_schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    names = {"kind": kind, "plural": plural, "singular": plural[:-1] if plural.endswith("s") else plural}
    if kind.endswith("Policy") or plural.endswith("ies"):
        names["singular"] = kind.lower()
    if short_names:
        names["shortNames"] = list(short_names)
    names["listKind"] = kind + "List"
    return api_object(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "%s.%s" % (plural, group),
        spec={
            "group": group,
            "scope": "Namespaced" if namespaced else "Cluster",
            "names": names,
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            },
                        }
                    },
                }
            ],
        },
    )


def policy_rule(groups, resources, verbs, names=None):
    rule = {"apiGroups": list(groups), "resources": list(resources), "verbs": list(verbs)}
    if names:
        rule["resourceNames"] = list(names)
    return rule


def cluster_role_binding(name, role, sa, namespace):
    return api_object(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        name,
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        subjects=[{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
    )


def cluster_role(name, rules):
    return api_object("rbac.authorization.k8s.io/v1", "ClusterRole", name, rules=rules)


def component_rbac(name, namespace, rules):
    """A component's ClusterRole, its binding and its ServiceAccount, all three named ``name``."""
    return [
        cluster_role(name, rules),
        cluster_role_binding(name, name, name, namespace),
        api_object("v1", "ServiceAccount", name, namespace),
    ]


def host_path_volume(name, path, type_=None):
    vol = {"name": name, "hostPath": {"path": path}}
    if type_:
        vol["hostPath"]["type"] = type_
    return vol


def volume_mount(name, path, read_only=False, propagation=None):
    mount = {"name": name, "mountPath": path}
    if read_only:
        mount["readOnly"] = True
    if propagation:
        mount["mountPropagation"] = propagation
    return mount


def env_var(name, value=None, field=None, cm=None):
    if field:
        return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": field}}}
    if cm:
        return {"name": name, "valueFrom": {"configMapKeyRef": {"name": cm[0], "key": cm[1]}}}
    return {"name": name, "value": str(value)}


def daemonset(name, namespace, labels, pod_spec, max_unavailable=1):
    return api_object(
        "apps/v1",
        "DaemonSet",
        name,
        namespace,
        labels,
        spec={
            "selector": {"matchLabels": dict(labels)},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": max_unavailable}},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    )
