"""smcp-api entry point (the service itself lands with the management API issue)."""

from __future__ import annotations

import sys


def main() -> None:
    sys.stderr.write("smcp-api: the management API is not part of this build yet\n")
    raise SystemExit(2)
