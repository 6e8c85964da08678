# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""``Problem``: one finding of one check, rendered as one message line; warn_only and split."""

from __future__ import annotations

from ansible_collections.smcp.platform.plugins.module_utils.preflight.data import ALL_CHECK_IDS, FAILURE, WARNING


class Problem(object):
    """One finding of one check: what is wrong, what was found and needed, and the fix."""

    __slots__ = ("check", "fix", "found", "need", "severity", "what")

    def __init__(self, check, what, found="", need="", fix="", severity=FAILURE):
        # type: (str, str, object, object, str, str) -> None
        self.check = check
        self.what = what
        self.found = "" if found is None else str(found)
        self.need = "" if need is None else str(need)
        self.fix = fix
        self.severity = severity

    def message(self, host=None):
        # type: (str | None) -> str
        """``<host>: [<id>] <what> (found X, need Y); fix: <how>``."""
        text = "[%s] %s" % (self.check, self.what)
        details = []
        if self.found:
            details.append("found %s" % self.found)
        if self.need:
            details.append("need %s" % self.need)
        if details:
            text += " (%s)" % ", ".join(details)
        if self.fix:
            text += "; fix: %s" % self.fix
        return "%s: %s" % (host, text) if host else text

    def as_dict(self, host=None):
        # type: (str | None) -> dict
        return {
            "id": self.check,
            "severity": self.severity,
            "what": self.what,
            "found": self.found,
            "need": self.need,
            "fix": self.fix,
            "msg": self.message(host),
        }

    def __repr__(self):
        return "Problem(%s)" % self.message()


def apply_warn_only(problems, warn_only):
    # type: (list, object) -> list
    """Downgrade the failures of the checks named in ``warn_only`` to warnings."""
    chosen = set(warn_only or ())
    for problem in problems:
        if problem.check in chosen and problem.severity == FAILURE:
            problem.severity = WARNING
            problem.what += " (downgraded to a warning by warn_only)"
    return problems


def split(problems):
    # type: (list) -> tuple
    failures = [p for p in problems if p.severity == FAILURE]
    warnings = [p for p in problems if p.severity != FAILURE]
    return failures, warnings


def unknown_check_ids(ids):
    # type: (object) -> list
    return sorted(set(ids or ()) - set(ALL_CHECK_IDS))
