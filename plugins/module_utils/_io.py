# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Write files the way Ansible modules do: one helper for every module of the collection.

The content goes to a temporary file in the destination directory (created 0600, so nobody
reads it half-written or with loose permissions), gets its final mode, owner and SELinux
context, and takes the destination's place with ``module.atomic_move``. The common file
arguments (``mode``, ``owner``, ``group``, ``seuser``, ``attributes``, ...) of modules built
with ``add_file_common_args=True`` apply; check mode changes nothing and reports what would.
Modelled on community.crypto's ``plugins/module_utils/_io.py``.
"""

from __future__ import annotations

import os
import stat
import tempfile
from typing import Any, Optional, Union


def file_arguments(
    module: Any,
    path: str,
    default_mode: Optional[Union[int, str]] = None,
    *,
    mode: Optional[Union[int, str]] = None,
    owner: Optional[str] = None,
    group: Optional[str] = None,
) -> dict[str, Any]:
    """The module's common file arguments for ``path``.

    ``default_mode`` applies when the user gave no ``mode``; ``mode``, ``owner`` and ``group``
    given here win over the user's (a private key stays 0600 whatever ``mode`` says).
    """
    args = module.load_file_common_arguments(module.params, path=path)
    if args.get("mode") is None:
        args["mode"] = default_mode
    for key, value in (("mode", mode), ("owner", owner), ("group", group)):
        if value is not None:
            args[key] = value
    return args


def read_bytes(path: str) -> Optional[bytes]:
    """The file's content, or None when it does not exist or cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def temp_file(module: Any, file_args: dict[str, Any]) -> tuple[int, str]:
    """An open descriptor and the name of a new, empty file next to ``file_args['path']``.

    The file already has the destination's final attributes (a bad ``mode`` or ``owner`` fails
    here, before anything is written): a symbolic mode applies, as Ansible's own modules do, to the
    mode a new file would get (0666 minus the umask). The directory must exist.
    """
    path = file_args["path"]
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ansible_tmp.%s." % os.path.basename(path), dir=directory)
    module.add_cleanup_file(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    module.set_fs_attributes_if_different(dict(file_args, path=tmp), False)
    return fd, tmp


def install_file(module: Any, tmp: str, file_args: dict[str, Any], diff: Optional[dict[str, Any]] = None) -> None:
    """Move the finished ``tmp`` (from ``temp_file``) to ``file_args['path']`` with the file arguments.

    An existing destination gets its final attributes before the move, because ``atomic_move``
    copies them onto the new file. A new one is moved under a umask of 0777 (``atomic_move``
    sets a file it creates to 0666 minus the umask) and then gets the temporary file's mode, so
    the content is never readable by more than the final mode allows.
    """
    path = file_args["path"]
    if os.path.exists(path):
        module.set_fs_attributes_if_different(file_args, False, diff)
        module.atomic_move(tmp, path)
        return
    mode = stat.S_IMODE(os.stat(tmp).st_mode)
    umask = os.umask(0o777)
    try:
        module.atomic_move(tmp, path)
    finally:
        os.umask(umask)
    module.set_fs_attributes_if_different(dict(file_args, mode=mode), False)


def write_file(
    module: Any,
    content: Union[bytes, str],
    file_args: dict[str, Any],
    diff: Optional[dict[str, Any]] = None,
) -> bool:
    """Make ``file_args['path']`` hold ``content`` (str is written as UTF-8) with the file arguments.

    Returns whether anything changed (or would, in check mode). ``diff``, a dict with ``before``
    and ``after`` dicts, receives the attributes that change on an existing file; the content
    diff is the caller's (only the caller knows what must be hidden).
    """
    path = file_args["path"]
    data = content.encode("utf-8") if isinstance(content, str) else content
    if read_bytes(path) == data:
        return module.set_fs_attributes_if_different(file_args, False, diff)
    if module.check_mode:
        return True
    fd, tmp = temp_file(module, file_args)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        install_file(module, tmp, file_args, diff)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True
