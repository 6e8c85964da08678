"""Jobs: validation and recording (service), inventory generation, the ansible-runner bridge, the worker."""

from __future__ import annotations
