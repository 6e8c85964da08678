#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: bootstrap_token
short_description: Create or reuse a kubeadm bootstrap token without ever printing it
version_added: 0.1.0
description:
  - Talks to the Kubernetes API from the controller with a kubeconfig and makes sure a bootstrap token
    Secret C(bootstrap-token-<id>) (type C(bootstrap.kubernetes.io/token), namespace kube-system) exists
    with the usages and groups C(kubeadm join) relies on.
  - Reuses the token this module created before while it has at least O(min_remaining) left; otherwise
    (none, or near expiry) creates a new one valid for O(ttl) (rotation). Our expired tokens are deleted.
    Tokens made by others (no C(app.kubernetes.io/managed-by=smcp) label) are never reused or deleted.
  - Also returns what a join needs besides the token, the C(sha256:) hash of the cluster CA (from the
    kubeconfig) and the API server version (for the version skew check).
  - The token is a secret. The module refuses to run unless the task has C(no_log=true), so it never
    reaches a log or the screen.
author:
  - smcp developers (@smcp)
extends_documentation_fragment:
  - smcp.platform.kube_auth
options:
  ttl:
    description: Lifetime of a new token, in seconds or as C(1h), C(30m), C(1h30m).
    type: str
    default: 1h
  min_remaining:
    description: Reuse an existing token only while it is valid for at least this long (seconds or C(20m)).
    type: str
    default: 20m
  usages:
    description: Token usages; C(authentication) is needed to join, C(signing) for token discovery.
    type: list
    elements: str
    default: [authentication, signing]
  groups:
    description: Extra groups of the token (C(auth-extra-groups)); kubeadm's RBAC expects the default.
    type: list
    elements: str
    default: ["system:bootstrappers:kubeadm:default-node-token"]
  description:
    description: Human-readable description stored in the Secret.
    type: str
    default: smcp join token
  timeout:
    description: Seconds to wait for each API request.
    type: float
    default: 10
  wait_timeout:
    description: Seconds to keep retrying while the API server does not answer at all.
    type: float
    default: 60
attributes:
  check_mode:
    support: full
    description: Reports whether a token would be created; returns no token then.
  diff_mode:
    support: none
    description: The token is a secret; nothing is diffed.
requirements:
  - kubernetes (Python library, on the controller)
  - cryptography (Python library, on the controller)
notes:
  - Run it on the controller (C(delegate_to=localhost), C(run_once=true)) with C(no_log=true).
seealso:
  - name: Authenticating with bootstrap tokens
    description: Token format and the Secret's fields.
    link: https://kubernetes.io/docs/reference/access-authn-authz/bootstrap-tokens/
"""

EXAMPLES = r"""
- name: A join token (never shown)
  smcp.platform.bootstrap_token:
    kubeconfig: ~/.smcp/clusters/smcp/admin.conf
  delegate_to: localhost
  run_once: true
  no_log: true
  register: join_token
"""

RETURN = r"""
token:
  description: The bootstrap token C(<id>.<secret>). Empty in check mode when a new one would be made.
  returned: success
  type: str
  sample: "abcdef.0123456789abcdef"
token_info:
  description: The token's id, Secret name and expiration (no secret part).
  returned: success and a token exists
  type: dict
  sample: {id: abcdef, secret_name: bootstrap-token-abcdef, expiration: "2026-11-25T18:00:00Z"}
created:
  description: Whether a new token was (or in check mode would be) created.
  returned: success
  type: bool
removed:
  description: Names of our expired token Secrets that were deleted.
  returned: success
  type: list
  elements: str
ca_cert_hash:
  description: C(sha256:<hex>) of the cluster CA public key, for C(discovery.bootstrapToken.caCertHashes).
  returned: success
  type: str
  sample: sha256:6d0c6aa5...
server_version:
  description: The API server's version.
  returned: success
  type: str
  sample: 1.35.0
"""

from ansible_collections.smcp.platform.plugins.module_utils.bootstrap_token import (  # noqa: E402
    DEFAULT_GROUPS,
    DEFAULT_USAGES,
    TokenError,
    ensure,
    parse_duration,
)
from ansible_collections.smcp.platform.plugins.module_utils.kube_client import (  # noqa: E402
    ca_cert_hash,
    kubeconfig_ca,
    wait_for,
)
from ansible_collections.smcp.platform.plugins.module_utils.kube_module import (  # noqa: E402
    kube_argument_spec,
    run_kube_module,
)

ARGUMENT_SPEC = kube_argument_spec(
    dict(
        ttl=dict(type="str", default="1h"),
        min_remaining=dict(type="str", default="20m"),
        usages=dict(type="list", elements="str", default=list(DEFAULT_USAGES)),
        groups=dict(type="list", elements="str", default=list(DEFAULT_GROUPS)),
        description=dict(type="str", default="smcp join token"),
        timeout=dict(type="float", default=10),
        wait_timeout=dict(type="float", default=60),
    )
)


def execute_module(module, client):
    params = module.params
    if not module.no_log:
        module.fail_json(
            msg="bootstrap_token returns a secret: set 'no_log: true' on this task so the token is never logged"
        )
    try:
        ttl = parse_duration("ttl", params["ttl"])
        min_remaining = parse_duration("min_remaining", params["min_remaining"])
        with open(params["kubeconfig"], encoding="utf-8") as handle:
            ca_hash = ca_cert_hash(kubeconfig_ca(handle.read(), params["context"]))
        version = wait_for(client, params["wait_timeout"])
        outcome = ensure(
            client,
            ttl=ttl,
            min_remaining=min_remaining,
            usages=params["usages"],
            groups=params["groups"],
            description=params["description"],
            check_mode=module.check_mode,
        )
    except OSError as exc:
        module.fail_json(msg=f"cannot read kubeconfig {params['kubeconfig']}: {exc}")
    except TokenError as exc:
        module.fail_json(msg=str(exc))
    token = outcome["token"]
    result = dict(
        changed=outcome["changed"],
        created=outcome["created"],
        removed=outcome["removed"],
        token=token.value if token else "",
        ca_cert_hash=ca_hash,
        server_version=version,
    )
    if token:
        result["token_info"] = token.public()
    module.exit_json(**result)


def main():
    run_kube_module(ARGUMENT_SPEC, execute_module, timeout_option="timeout")


if __name__ == "__main__":
    main()
