"""Folders that cannot be archived: each a LocalFileError naming the path, before any request."""

from __future__ import annotations

import os
import re
import socket
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from kore_models.errors import LocalFileError
from kore_models.transfer import folder as folder_module
from kore_models.transfer.folder import FolderFilter, list_folder, name_problem
from kore_models.transfer.source import prepare_source
from tests.support.folders import write_tree

NOBODY = 65534


def refusal(root: Path, rules: FolderFilter | None = None) -> str:
    with pytest.raises(LocalFileError) as caught:
        list_folder(root, rules)
    return str(caught.value)


def with_file(root: Path) -> Path:
    return write_tree(root, {"config.json": b"{}"})


def make_fifo(root: Path) -> str:
    os.mkfifo(with_file(root) / "pipe")
    return r"pipe is a named pipe \(fifo\)"


def make_socket(root: Path) -> str:
    with_file(root)
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(root / "agent.sock"))
    finally:
        server.close()
    return "agent.sock is a socket"


def make_device(root: Path) -> str:
    try:
        os.mknod(with_file(root) / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    return "null is a device"


def make_self_loop(root: Path) -> str:
    (with_file(root) / "loop").symlink_to("loop")
    return "loop is a symbolic link loop"


def make_ancestor_loop(root: Path) -> str:
    write_tree(root, {"sub/w.bin": b"w"})
    (root / "sub" / "up").symlink_to("..")
    return "sub/up is a symbolic link loop"


def make_mutual_loop(root: Path) -> str:
    write_tree(root, {"a/w.bin": b"w", "b": None})
    (root / "a" / "to-b").symlink_to("../b")
    (root / "b" / "to-a").symlink_to("../a")
    return "a/to-b/to-a is a symbolic link loop"


def make_outside_link(root: Path) -> str:
    write_tree(root.parent / "elsewhere", {"w.bin": b"w"})
    (with_file(root) / "w.bin").symlink_to("../elsewhere/w.bin")
    return "w.bin is a symbolic link to .*/elsewhere/w.bin, outside the folder"


def make_absolute_outside_link(root: Path) -> str:
    (with_file(root) / "passwd").symlink_to("/etc/passwd")
    return "passwd is a symbolic link to /etc/passwd, outside the folder"


def make_dangling_link(root: Path) -> str:
    (with_file(root) / "gone").symlink_to("missing.bin")
    return "gone is a symbolic link to nothing"


def make_hard_link(root: Path) -> str:
    os.link(with_file(root) / "config.json", root / "config-copy.json")
    return "config-copy.json has 2 hard links"


def make_hard_link_to_outside(root: Path) -> str:
    os.link(with_file(root) / "config.json", root.parent / "outside.json")
    return "config.json has 2 hard links"


def make_non_utf8_name(root: Path) -> str:
    with_file(root)
    open(os.fsencode(root) + b"/caf\xe9.bin", "wb").close()
    return r"caf\\xe9.bin has a name that is not valid UTF-8"


def make_non_utf8_folder(root: Path) -> str:
    with_file(root)
    os.mkdir(os.fsencode(root) + b"/\xff\xfe")
    return r"\\xff\\xfe has a name that is not valid UTF-8"


BAD_ENTRIES: dict[str, Callable[[Path], str]] = {
    "fifo": make_fifo,
    "socket": make_socket,
    "device": make_device,
    "symlink to itself": make_self_loop,
    "symlink to a parent folder": make_ancestor_loop,
    "two folder links to each other": make_mutual_loop,
    "relative link outside": make_outside_link,
    "absolute link outside": make_absolute_outside_link,
    "dangling link": make_dangling_link,
    "hard link inside": make_hard_link,
    "hard link to outside": make_hard_link_to_outside,
    "non-UTF-8 file name": make_non_utf8_name,
    "non-UTF-8 folder name": make_non_utf8_folder,
}


@pytest.mark.parametrize("case", BAD_ENTRIES, ids=list(BAD_ENTRIES))
def test_a_bad_entry_is_refused_naming_its_path(tmp_path: Path, case: str) -> None:
    root = tmp_path / "my-model"
    expected = BAD_ENTRIES[case](root)
    message = refusal(root)
    count = 2 if case in ("hard link inside", "two folder links to each other") else 1
    noun = "entry" if count == 1 else "entries"
    assert message.startswith(f"{root}: {count} {noun} cannot be archived: ")
    assert re.search(rf"(: |; ){expected}", message), message
    assert message.endswith("leave the others out with --exclude")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    root = tmp_path / "m"
    make_fifo(root)
    make_self_loop(root)
    make_absolute_outside_link(root)
    message = refusal(root)
    assert message.startswith(f"{root}: 3 entries cannot be archived: ")
    items = message.split("cannot be archived: ")[1].split(". Only")[0].split("; ")
    assert [item.split(" ")[0] for item in items] == ["loop", "passwd", "pipe"]


def test_a_bad_entry_can_be_excluded(tmp_path: Path) -> None:
    root = tmp_path / "m"
    make_fifo(root)
    assert [e.path for e in list_folder(root, FolderFilter(exclude=["pipe"])).entries] == [
        "config.json"
    ]


def test_a_name_longer_than_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No Linux file system here stores a 256-byte name, so the limit is lowered to test
    # the walk; name_problem itself is checked at the real limit below.
    root = write_tree(tmp_path / "m", {"short": b"", "eleven-byte": b""})
    monkeypatch.setattr(folder_module, "MAX_NAME_BYTES", 10)
    assert ": eleven-byte has a 11-byte name, above the 10-byte limit" in refusal(root)


def test_name_problem_at_the_real_limit() -> None:
    assert name_problem("é".encode() * 127 + b"x") is None  # 255 bytes
    assert name_problem(b"x" * 256) == "has a 256-byte name, above the 255-byte limit"
    assert name_problem(b"\xc3") == "has a name that is not valid UTF-8 (rename it)"


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda root: root.mkdir(), "the folder has no files; nothing to import"),
        (lambda root: (root / "a" / "b").mkdir(parents=True), "the folder has no files"),
        (
            lambda root: write_tree(root, {".git/HEAD": b"x", "__pycache__/a.pyc": b""}),
            "every file in the folder is excluded (2 left out by .git/ .cache/",
        ),
        (lambda root: root.write_bytes(b"x"), "is not a folder"),
        (lambda root: None, "no such folder"),
    ],
    ids=["empty", "only empty folders", "only excluded", "a file", "missing"],
)
def test_folders_with_nothing_to_send(
    tmp_path: Path, setup: Callable[[Path], object], expected: str
) -> None:
    root = tmp_path / "my-model"
    setup(root)
    message = refusal(root)
    assert message.startswith(f"{root}: ")
    assert expected in message


def test_a_folder_that_is_itself_a_symlink_is_refused(tmp_path: Path) -> None:
    real = with_file(tmp_path / "real-model")
    link = tmp_path / "my-model"
    link.symlink_to(real)
    for given in (link, Path(f"{link}/")):
        message = refusal(given)
        assert message.startswith(f"{link}: is a symbolic link to {real}; give the folder itself")


def list_as_nobody(root: Path) -> str:
    """Run list_folder in a forked child that dropped to uid/gid 65534; its outcome."""
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        outcome = "no error"
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            list_folder(root)
        except LocalFileError as exc:
            outcome = str(exc)
        except BaseException as exc:
            outcome = f"unexpected {exc!r}"
        finally:
            os.write(writing, outcome.encode())
            os._exit(0)
    os.close(writing)
    with os.fdopen(reading, "rb") as pipe:
        outcome = pipe.read().decode()
    os.waitpid(pid, 0)
    return outcome


@pytest.fixture
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder any user can enter (pytest's own tmp folders are private to root)."""
    base = Path(tmp_path_factory.getbasetemp())
    for part in (base, *base.parents):
        if str(part) in ("/", "/tmp"):
            break
        part.chmod(part.stat().st_mode | 0o711)
    shared = Path(tempfile.mkdtemp(dir=base))
    shared.chmod(0o755)
    return shared


@pytest.mark.parametrize("what", ["file", "folder"])
def test_an_unreadable_entry_is_refused(shared_dir: Path, what: str) -> None:
    root = write_tree(shared_dir / "m", {"config.json": b"{}", "secret/w.bin": b"w"})
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    root.chmod(0o755)
    target = root / "secret" if what == "folder" else root / "secret" / "w.bin"
    target.chmod(0)
    message = list_as_nobody(root) if os.geteuid() == 0 else refusal(root)
    expected = (
        ": secret is a folder that cannot be read (Permission denied)"
        if what == "folder"
        else ": secret/w.bin cannot be read (Permission denied)"
    )
    assert expected in message, message


def test_a_folder_whose_own_name_is_not_utf8_is_refused(tmp_path: Path) -> None:
    root = os.fsencode(tmp_path) + b"/mod\xe8le"
    write_tree(Path(os.fsdecode(root)), {"config.json": b"{}"})
    with pytest.raises(LocalFileError) as caught:
        prepare_source(Path(os.fsdecode(root)))
    assert str(caught.value).endswith(
        r"mod\xe8le: the folder has a name that is not valid UTF-8 (rename it)"
    )
