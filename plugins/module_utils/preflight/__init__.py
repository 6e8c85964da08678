# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""Host preflight checks for smcp nodes, one layer per file.

Each layer is usable on its own and unit-tested without a host:

* ``data``: check ids, the OS support table, per-role minimums, ports, paths (plain data);
* ``problems``: ``Problem`` (one finding, rendered as one message line), warn_only, split;
* ``parsers``: turn the text of /proc and /etc files into data (``parse_*``);
* ``host``: ``HostView``, read-only access to the host (the real one, or a fake in tests);
* ``facts``: ``collect(view)`` reads everything a check needs in one pass, returns plain facts;
* ``checks``: ``evaluate(facts, settings)`` runs every node check, returns ``Problem`` objects;
* ``report``: ``run_preflight(view, settings)``, collect + evaluate + the module result.

Nothing here changes the host: files are only opened read-only and lock files
are tested with ``F_GETLK`` (never created, never locked). Import from the
submodule that holds a name; this package file holds no code.
"""
