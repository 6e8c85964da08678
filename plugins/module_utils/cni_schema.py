# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Validate rendered manifests against the Kubernetes OpenAPI schema and CRD schemas.

The Kubernetes schemas are the strict JSON schemas of kubernetes-validate (roles/cni/files/
schemas/kubernetes-<minor>.json, only the kinds the role renders; see tests/unit/cni_schemas_gen.py).
Custom resources are checked against the openAPIV3Schema of their CRD (the CRDs the role renders).
The validator covers the JSON-schema keywords those schemas use: type (with null), properties,
additionalProperties, required, items, enum, oneOf, $ref, minimum/maximum and
x-kubernetes-preserve-unknown-fields. Every error names the object and the field path.
"""

from __future__ import annotations

import json
import os

_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
}


def load_schemas(schema_dir, minor):
    path = os.path.join(schema_dir, "kubernetes-%s.json" % minor)
    if not os.path.exists(path):
        have = sorted(
            f[len("kubernetes-") : -len(".json")] for f in os.listdir(schema_dir) if f.startswith("kubernetes-")
        )
        raise ValueError("no Kubernetes schema for %s in %s (have: %s)" % (minor, schema_dir, ", ".join(have)))
    with open(path) as handle:
        return json.load(handle)


def _type_ok(value, name):
    if name == "null":
        return value is None
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def _check(value, schema, path, defs, errors):
    if "$ref" in schema:
        schema = defs[schema["$ref"]]
    if "oneOf" in schema:
        if not any(not _collect(value, sub, path, defs) for sub in schema["oneOf"]):
            errors.append("%s: %r matches none of the allowed forms" % (path, value))
        return
    types = schema.get("type")
    if types is not None:
        types = types if isinstance(types, list) else [types]
        if not any(_type_ok(value, t) for t in types):
            errors.append("%s: expected %s, got %s %r" % (path, " or ".join(types), type(value).__name__, value))
            return
    if value is None:
        return
    if "enum" in schema and value not in schema["enum"]:
        errors.append("%s: %r is not one of %s" % (path, value, ", ".join(repr(e) for e in schema["enum"])))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append("%s: %r is below the minimum %r" % (path, value, schema["minimum"]))
        if "maximum" in schema and value > schema["maximum"]:
            errors.append("%s: %r is above the maximum %r" % (path, value, schema["maximum"]))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append("%s: required field %r is missing" % (path, key))
        extra = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields")
        for key, item in value.items():
            sub = path + "." + key if path else key
            if key in props:
                _check(item, props[key], sub, defs, errors)
            elif isinstance(extra, dict):
                _check(item, extra, sub, defs, errors)
            elif props and extra is not True and not preserve:
                errors.append("%s: unknown field (allowed: %s)" % (sub, ", ".join(sorted(props))))
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(item, schema["items"], "%s[%d]" % (path, i), defs, errors)


def _collect(value, schema, path, defs):
    errors = []
    _check(value, schema, path, defs, errors)
    return errors


def _crd_schemas(objs):
    out = {}
    for obj in objs:
        if obj.get("kind") != "CustomResourceDefinition":
            continue
        spec = obj.get("spec", {})
        for version in spec.get("versions", []):
            key = "%s/%s/%s" % (spec.get("group"), version.get("name"), spec.get("names", {}).get("kind"))
            out[key] = (version.get("schema") or {}).get("openAPIV3Schema") or {}
    return out


def object_name(obj):
    meta = obj.get("metadata") or {}
    name = meta.get("name", "<no name>")
    if meta.get("namespace"):
        name = meta["namespace"] + "/" + name
    return "%s %s" % (obj.get("kind", "<no kind>"), name)


def validate(objs, schemas, extra_crds=()):
    """Return a list of errors "<Kind> <ns>/<name>: <field path>: <problem>" (empty = valid).

    schemas: the loaded kubernetes-<minor>.json; extra_crds: CRD objects already on the
    cluster (or shipped) for custom resources whose CRD is not in objs.
    """
    kinds, defs = schemas["kinds"], schemas["definitions"]
    crds = _crd_schemas(list(extra_crds) + list(objs))
    errors = []
    for obj in objs:
        if not isinstance(obj, dict):
            errors.append("manifest %r is not a mapping" % (obj,))
            continue
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        key = "%s/%s" % (api_version, kind)
        where = object_name(obj)
        if key in kinds:
            problems = _collect(obj, defs[kinds[key]], "", defs)
        elif key in crds:
            problems = _collect(obj, crds[key], "", defs)
        else:
            problems = [
                "apiVersion/kind %s is neither a Kubernetes %s kind we ship a schema for nor a CRD"
                % (key, schemas.get("source", ""))
            ]
        if not (obj.get("metadata") or {}).get("name"):
            problems.append("metadata.name: required")
        errors.extend("%s: %s" % (where, p) for p in problems)
    return errors
