"""Settings and cross-cutting helpers of the management API."""

from __future__ import annotations
