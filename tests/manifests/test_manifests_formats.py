"""Files written through ``atomic_write`` are whole or absent, and readable like any file."""

import os
import stat

import pytest

from manifests.formats import atomic_write


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_write_gives_the_permissions_of_open(tmp_path, umask):
    old = os.umask(umask)
    try:
        with atomic_write(tmp_path / "train_aa.tsv") as f:
            f.write("/root\n")
        with open(tmp_path / "plain", "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE(os.stat(tmp_path / "train_aa.tsv").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode) == 0o666 & ~umask


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path):
    (tmp_path / "dict.ltr.txt").write_text("a 1\n")
    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "dict.ltr.txt") as f:
            f.write("b 2\n")
            raise RuntimeError("interrupted")
    assert (tmp_path / "dict.ltr.txt").read_text() == "a 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dict.ltr.txt"]
