"""Key files: one hex secp256k1 private key per file, readable by its owner only (as ssh insists).

`write_key_file` creates the file with mode 0600 from the first byte (a temporary file opened with that
mode, then linked or renamed into place), so there is no moment when another user could read it.
`read_key_file` refuses a file whose mode gives the group or others any access, naming the file and
the fix, like ssh's "UNPROTECTED PRIVATE KEY FILE".
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from anchor.errors import InputError

KEY_FILE_MODE = 0o600


class KeyFileExistsError(InputError):
    """`write_key_file` would overwrite a key: a key is never replaced unless asked to."""


def write_key_file(path: Path, key_hex: str, *, replace: bool = False) -> None:
    """Writes `key_hex` (and a newline) to `path` with mode 0600, atomically: a crash leaves no file
    or the whole one. Raises KeyFileExistsError if `path` exists, unless `replace`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # O_EXCL: never write through a file (or link) someone else put there; 0600 before any byte.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        with os.fdopen(fd, "w") as out:
            os.fchmod(out.fileno(), KEY_FILE_MODE)  # the umask only narrows; say it anyway
            out.write(key_hex.strip() + "\n")
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the key exists, where a rename would replace it
            except FileExistsError:
                raise KeyFileExistsError(str(path), "exists: a key file is never overwritten") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def new_key_file(path: Path) -> str:
    """Creates `path` holding a fresh random key (mode 0600); returns the key's hex."""
    key_hex = secrets.token_bytes(32).hex()
    write_key_file(path, key_hex)
    return key_hex


def read_key_file(path: Path) -> str:
    """The stripped text of key file `path`. Raises InputError naming the file if it is missing or if
    its group or others have any access (the fix: chmod 600)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise InputError(str(path), "does not exist") from None
    except IsADirectoryError:
        raise InputError(str(path), "is a directory, not a key file") from None
    with os.fdopen(fd) as file:
        mode = stat.S_IMODE(os.fstat(file.fileno()).st_mode)  # of the file opened, not a later swap
        if mode & 0o077:
            raise InputError(
                str(path),
                f"permissions {mode:04o} are too open: a private key must be accessible by its owner "
                f"only; run `chmod 600 {path}`",
            )
        return file.read().strip()


def configured_key(value: str | None, variable: str, path: Path) -> tuple[str, str] | None:
    """(hex key, where it came from) for a role's key: environment variable `variable` (its `value`)
    if set, else key file `path` if it exists (checked by `read_key_file`); None if neither."""
    if value is not None:
        return value, variable
    if path.is_file():
        return read_key_file(path), str(path)
    return None


def load_account(text: str, source: str) -> LocalAccount:
    """An account from a hex private key; InputError naming `source` if it is not one."""
    try:
        return Account.from_key(bytes.fromhex(text.strip().removeprefix("0x")))
    except ValueError:
        raise InputError(source, "is not a 32-byte hex private key") from None
