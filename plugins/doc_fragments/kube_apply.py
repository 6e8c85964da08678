# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Options of the modules that server-side apply a list of objects (module_utils/kube_module.py KUBE_APPLY_SPEC)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  objects:
    description:
      - The manifests (plain dicts), in apply order, for example RV(smcp.platform.cni_manifests#module:objects).
    type: list
    elements: dict
    required: true
  field_manager:
    description: Server-side apply field manager.
    type: str
    default: smcp
"""
