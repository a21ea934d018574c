"""Reading and writing files inside a folder only, never through a link.

A link placed in an outbox or the reports folder must neither make the web routes serve a
file from elsewhere (the index, ``/etc/passwd``) nor make a writer write into one. Both
sides start from a *root*: a folder an operator configured (``REPORTS_DIR``; for an outbox,
the folder that holds it, ``OUTBOX_ROOT`` by default, so the outbox itself must be a real
folder). The root is resolved once, so it may be, or sit under, a link an operator made (a
mounted volume, say). Below it, each folder is opened relative to the one before with
``O_NOFOLLOW`` (``openat``), so no component can be a link, nor be swapped for one between a
check and the use; ``..`` is refused before anything is opened.

- :func:`read_inside`: the file's bytes, read from the very descriptor that was checked to
  be a regular file with a single name (a hard link to a file elsewhere has two).
- :func:`write_inside`: the bytes written whole to a new temporary file beside the target
  (``O_CREAT | O_EXCL | O_NOFOLLOW``) and renamed over it; refused when the target is a
  link, a hard link or not a regular file. Missing folders below the root are made (0750).

Both raise :class:`~childindex.errors.UnsafePath` for anything refused; its message names the
root and the path below it, never what a file holds or where a link points.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path

from childindex.errors import UnsafePath
from childindex.settings import private_dir

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted under a served name must not hang the reader on open.
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# What open() says, with O_NOFOLLOW, of a link (ELOOP) or of a link or file where a folder
# should be (ENOTDIR).
_LINK_ERRORS = (errno.ELOOP, errno.ENOTDIR)


def read_inside(root: Path, path: Path) -> bytes:
    """The bytes of ``path``, a regular file with one name below ``root``, reached through
    real folders only.

    Raises:
        UnsafePath: ``path`` is not below ``root``, or it or a folder on the way is a link,
            a hard link or not a regular file.
        FileNotFoundError: nothing is there.
    """
    parts = _parts_below(root, path)
    folder = _open_folders(root, parts[:-1], create=False)
    try:
        try:
            fd = os.open(parts[-1], _READ, dir_fd=folder)
        except OSError as exc:
            if exc.errno in _LINK_ERRORS:
                raise _refused(root, parts, "is a link") from None
            raise
    finally:
        os.close(folder)
    with os.fdopen(fd, "rb") as fh:
        _require_single_file(os.fstat(fh.fileno()), root, parts)
        return fh.read()


def write_inside(root: Path, path: Path, data: bytes | str, *, mode: int = 0o640) -> Path:
    """Write ``data`` (str as UTF-8) to ``path`` below ``root`` whole: into a new temporary
    file beside it, renamed over it, so a reader never sees half a file. Returns ``path``.

    Raises:
        UnsafePath: ``path`` is not below ``root``, a folder on the way is a link, or an
            existing ``path`` is a link, a hard link or not a regular file.
    """
    parts = _parts_below(root, path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    private_dir(root.resolve())
    folder = _open_folders(root, parts[:-1], create=True)
    name = parts[-1]
    try:
        try:
            existing = os.stat(name, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            pass
        else:
            _require_single_file(existing, root, parts)
        temporary = f".{name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temporary, _NEW, mode, dir_fd=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            # A name, not a path: rename never follows a link, it would replace it.
            os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            try:
                os.unlink(temporary, dir_fd=folder)
            except FileNotFoundError:
                pass
            raise
        os.fsync(folder)
    finally:
        os.close(folder)
    return path


# ----------------------------------------------------------------------------- helpers


def _parts_below(root: Path, path: Path) -> tuple[str, ...]:
    """The names from ``root`` down to ``path`` (compared as written, before any link is
    followed); refused unless there is at least one and none is ``..`` or holds a NUL."""
    try:
        parts = path.absolute().relative_to(root.absolute()).parts
    except ValueError:
        raise UnsafePath(f"{root}: refused a path outside this folder: {path}") from None
    if not parts or any(p in ("..", ".") or "\0" in p for p in parts):
        raise UnsafePath(f"{root}: refused {path}: not a file name below this folder")
    return parts


def _open_folders(root: Path, folders: tuple[str, ...], *, create: bool) -> int:
    """A descriptor of the folder ``root/folders...``, each folder opened from the one above
    without following a link; with ``create``, a missing one is made (0750)."""
    fd = os.open(root.resolve(), _FOLDER)
    try:
        for i, name in enumerate(folders):
            made = False
            if create:
                try:
                    os.mkdir(name, 0o750, dir_fd=fd)
                    made = True
                except FileExistsError:
                    pass
            try:
                child = os.open(name, _FOLDER | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in _LINK_ERRORS:
                    raise _refused(root, folders[: i + 1], "is a link or not a folder") from None
                raise
            os.close(fd)
            fd = child
            if made:
                os.fchmod(fd, 0o750)  # as settings.private_dir: whatever the umask
    except BaseException:
        os.close(fd)
        raise
    return fd


def _require_single_file(st: os.stat_result, root: Path, parts: tuple[str, ...]) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise _refused(root, parts, "is a link")
    if not stat.S_ISREG(st.st_mode):
        raise _refused(root, parts, "is not a regular file")
    if st.st_nlink != 1:
        raise _refused(root, parts, "is a hard link (the file has another name, maybe outside the folder)")


def _refused(root: Path, parts: tuple[str, ...], why: str) -> UnsafePath:
    return UnsafePath(f"{root}: refused {'/'.join(parts)}: it {why}; nothing is read or written through links")
