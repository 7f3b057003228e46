"""Key files: written 0600 whatever the umask, never overwritten unasked, refused when others may read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from anchor.errors import InputError
from anchor.keyfiles import KeyFileExistsError, new_key_file, read_key_file, write_key_file

KEY = "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_0600_even_under_umask_0_and_read_back(tmp_path: Path) -> None:
    old = os.umask(0)  # the widest umask: the mode must still be owner-only
    try:
        path = tmp_path / "keys" / "log.key"
        write_key_file(path, KEY)
    finally:
        os.umask(old)
    assert _mode(path) == 0o600
    assert path.read_text() == KEY + "\n"
    assert read_key_file(path) == KEY
    assert os.listdir(path.parent) == ["log.key"]  # no temporary file left behind


def test_an_existing_key_is_kept_unless_replace(tmp_path: Path) -> None:
    path = tmp_path / "receipt.key"
    first = new_key_file(path)
    with pytest.raises(KeyFileExistsError) as e:
        write_key_file(path, KEY)
    assert (e.value.field, e.value.reason) == (str(path), "exists: a key file is never overwritten")
    assert read_key_file(path) == first and first != KEY and len(bytes.fromhex(first)) == 32
    write_key_file(path, KEY, replace=True)
    assert read_key_file(path) == KEY and _mode(path) == 0o600
    assert os.listdir(tmp_path) == ["receipt.key"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o610, 0o601])
def test_a_key_others_can_access_is_refused_naming_the_file_and_the_fix(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "provider.key"
    write_key_file(path, KEY)
    path.chmod(mode)
    with pytest.raises(InputError) as e:
        read_key_file(path)
    assert e.value.field == str(path)
    assert e.value.reason == (
        f"permissions {mode:04o} are too open: a private key must be accessible by its owner only; "
        f"run `chmod 600 {path}`"
    )


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_modes_are_accepted(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "challenger.key"
    write_key_file(path, KEY)
    path.chmod(mode)
    assert read_key_file(path) == KEY


def test_a_missing_key_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(InputError) as e:
        read_key_file(tmp_path / "none.key")
    assert (e.value.field, e.value.reason) == (str(tmp_path / "none.key"), "does not exist")
