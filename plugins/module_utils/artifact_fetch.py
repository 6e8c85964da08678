# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Verified download of one artifact: fetch, hash, keep only what matches the expected sha256.

Pure logic plus an injectable opener, unit-tested without a host. A file that does not
match is deleted and the error names the URL, the expected and the actual sum.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from typing import IO, Callable, Optional

Opener = Callable[[str, float], IO[bytes]]
TempFile = Callable[[str], "tuple[int, str]"]  # dest -> (descriptor, name) of a new file next to it
Place = Callable[[str, str], None]  # (verified temporary file, dest): move it into place

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024


class ArtifactError(Exception):
    """A download failed or a sum is malformed; the message names the field and the fix."""


class ChecksumMismatch(ArtifactError):
    """A file (or a manifest entry) disagrees with the expected sha256."""

    def __init__(self, url: str, expected: str, actual: str, what: str = "file", deleted: bool = True) -> None:
        self.url = url
        self.expected = expected
        self.actual = actual
        self.deleted = deleted
        tail = "; the file was deleted" if deleted else ""
        super().__init__(f"sha256 mismatch for {what} {url}: expected {expected}, actual {actual}{tail}")


@dataclass
class FetchResult:
    changed: bool
    dest: str
    url: str
    sha256: str
    size: int
    action: str  # "kept" (already there), "downloaded", "verified", "would download"


def normalise_sha256(value: str, field: str = "sha256") -> str:
    """Accept 'HEX' or 'sha256:HEX' (any case); ArtifactError naming the field otherwise."""
    text = str(value or "").strip().lower()
    if text.startswith("sha256:"):
        text = text[len("sha256:") :]
    if not _SHA256_RE.match(text):
        raise ArtifactError(f"{field} must be a 64-character hex sha256 (optionally prefixed 'sha256:'), got '{value}'")
    return text


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_manifest_sum(url: str, expected: str, manifest_sha256: Optional[str]) -> None:
    """A bundle manifest that disagrees with the expected sum fails before any download."""
    if not manifest_sha256:
        return
    listed = normalise_sha256(manifest_sha256, "manifest_sha256")
    if listed != expected:
        raise ChecksumMismatch(url, expected, listed, what="bundle manifest entry of", deleted=False)


def _local_path(url: str) -> Optional[str]:
    if url.startswith("file://"):
        return url[len("file://") :]
    if url.startswith("/"):
        return url
    return None


def default_opener(url: str, timeout: float) -> IO[bytes]:  # pragma: no cover - replaced in modules/tests
    from ansible.module_utils.urls import open_url

    return open_url(url, timeout=timeout, follow_redirects="all")


def verify(path: str, expected: str, url: str) -> str:
    """Hash ``path``; on mismatch delete it and raise ChecksumMismatch."""
    actual = sha256_file(path)
    if actual != expected:
        os.unlink(path)
        raise ChecksumMismatch(url, expected, actual)
    return actual


def fetch(
    url: str,
    dest: str,
    sha256: str,
    *,
    manifest_sha256: Optional[str] = None,
    mode: Optional[int] = 0o644,
    timeout: float = 60.0,
    check_mode: bool = False,
    opener: Opener = default_opener,
    temp_file: Optional[TempFile] = None,
    place: Optional[Place] = None,
) -> FetchResult:
    """Make ``dest`` hold the artifact of ``url`` whose sha256 is ``sha256``.

    An existing ``dest`` with the right sum is kept (no download). Without ``url`` the
    existing ``dest`` is only verified (deleted on mismatch). The download goes to a
    temporary file next to ``dest`` and replaces it only once verified.

    The module passes ``temp_file`` and ``place`` from ``module_utils/_io`` (attributes and
    ``module.atomic_move``) and ``mode=None`` (it sets the file arguments itself); the
    defaults (``tempfile.mkstemp``, ``os.chmod`` to ``mode`` and ``os.replace``) serve tests
    and callers without an AnsibleModule.
    """
    expected = normalise_sha256(sha256)
    check_manifest_sum(url or dest, expected, manifest_sha256)
    if os.path.isfile(dest):
        actual = sha256_file(dest)
        if actual == expected:
            changed = mode is not None and _set_mode(dest, mode, check_mode)
            return FetchResult(changed, dest, url, actual, os.path.getsize(dest), "kept")
        if not url:
            if not check_mode:
                os.unlink(dest)
            raise ChecksumMismatch(dest, expected, actual, deleted=not check_mode)
    elif not url:
        raise ArtifactError(f"{dest} does not exist and no url was given to download it from")
    if check_mode:
        return FetchResult(True, dest, url, expected, 0, "would download")

    directory = os.path.dirname(os.path.abspath(dest))
    os.makedirs(directory, exist_ok=True)
    if temp_file is not None:
        handle, tmp = temp_file(dest)
    else:
        handle, tmp = tempfile.mkstemp(prefix=".smcp-fetch-", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            local = _local_path(url)
            try:
                if local is not None:
                    with open(local, "rb") as src:
                        shutil.copyfileobj(src, out, _CHUNK)
                else:
                    response = opener(url, timeout)
                    try:
                        shutil.copyfileobj(response, out, _CHUNK)
                    finally:
                        response.close()
            except OSError as exc:
                raise ArtifactError(f"download of {url} failed: {exc}") from exc
        actual = verify(tmp, expected, url)
        if place is not None:
            place(tmp, dest)
        else:
            if mode is not None:
                os.chmod(tmp, mode)
            os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return FetchResult(True, dest, url, actual, os.path.getsize(dest), "downloaded")


def _set_mode(path: str, mode: int, check_mode: bool) -> bool:
    current = os.stat(path).st_mode & 0o7777
    if current == mode:
        return False
    if not check_mode:
        os.chmod(path, mode)
    return True
