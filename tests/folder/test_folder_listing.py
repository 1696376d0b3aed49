"""The folder listing: order, recorded metadata, the include/exclude filter, the fingerprint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kore_models.errors import ConfigurationError, LocalFileError
from kore_models.transfer.folder import FolderFilter, FolderListing, list_folder
from kore_models.transfer.listing_changes import fingerprint_listing
from tests.support.folders import (
    FIXED_MTIME_NS,
    LONG_DIR,
    LONG_FILE,
    NON_ASCII,
    pin_mtimes,
    write_tree,
)


def paths(listing: FolderListing) -> list[str]:
    return [entry.path + ("/" if entry.is_dir else "") for entry in listing.entries]


def test_the_listing_is_sorted_parents_first_with_relative_posix_paths(model_folder: Path) -> None:
    listing = list_folder(model_folder)
    names = paths(listing)
    assert names[:3] == ["README.md", "config.json", f"{LONG_DIR}/"]
    assert "donn\u00e9es/\u043c\u043e\u0434\u0435\u043b\u044c.bin" in names
    assert f"{LONG_DIR}/{LONG_FILE}" in names
    assert f"{LONG_DIR}/{LONG_DIR}/{LONG_DIR}/deep.txt" in names
    assert NON_ASCII in names
    assert "empty-folder/" in names
    assert "nested/a/empty-deep/" in names
    # Sorted by UTF-8 bytes component by component: a folder's contents follow it.
    keys = [tuple(n.rstrip("/").encode().split(b"/")) for n in names]
    assert keys == sorted(keys)
    for name in names:
        parent = name.rstrip("/").rpartition("/")[0]
        if parent:
            assert names.index(parent + "/") < names.index(name)


def test_entries_record_size_mode_mtime_and_links_are_followed(model_folder: Path) -> None:
    entries = {entry.path: entry for entry in list_folder(model_folder).entries}
    assert entries["config.json"].mode == 0o600
    assert entries["run.sh"].mode == 0o755
    assert entries["empty.txt"].size == 0
    assert entries["model-00001-of-00002.safetensors"].size == 300_000
    assert entries["nested"].is_dir
    assert entries["nested"].size == 0
    assert all(entry.mtime_ns == FIXED_MTIME_NS for entry in entries.values())
    link = entries["tokenizer.model"]
    assert not link.is_dir
    assert link.size == (model_folder / "tokenizer.json").stat().st_size
    assert link.source == str(model_folder / "tokenizer.model")


def test_default_excludes_leave_out_git_caches_and_os_litter(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "m",
        {
            "a.bin": b"1",
            ".git/HEAD": b"x",
            ".cache/huggingface/download/a.bin.lock": b"",
            "sub/__pycache__/m.pyc": b"",
            "sub/.ipynb_checkpoints/n.ipynb": b"",
            ".DS_Store": b"",
            "sub/.DS_Store": b"",
            ".gitattributes": b"*.bin filter=lfs\n",
        },
    )
    assert paths(list_folder(root)) == [".gitattributes", "a.bin", "sub/"]


def test_an_include_wins_over_excludes_and_defaults(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / "m",
        {
            "config.json": b"{}",
            "model.safetensors": b"w",
            "optimizer.pt": b"o",
            "logs/run.txt": b"l",
            "shards/part-1.safetensors": b"s",
            ".cache/keep.txt": b"c",
        },
    )
    only_weights = FolderFilter(exclude=["*"], include=["*.safetensors", "config.json"])
    assert paths(list_folder(root, only_weights)) == [
        "config.json",
        "model.safetensors",
        "shards/",
        "shards/part-1.safetensors",
    ]
    no_logs = FolderFilter(exclude=["logs/", "*.pt"], include=[".cache/"])
    assert paths(list_folder(root, no_logs)) == [
        ".cache/",
        ".cache/keep.txt",
        "config.json",
        "model.safetensors",
        "shards/",
        "shards/part-1.safetensors",
    ]
    assert ".git/" not in paths(list_folder(root, FolderFilter(default_excludes=False)))
    assert ".cache/" in paths(list_folder(root, FolderFilter(default_excludes=False)))


def test_excluded_entries_are_never_checked(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "m", {"a.bin": b"1", ".git/objects/x": b"2"})
    os.mkfifo(root / ".git" / "fifo")
    os.link(root / ".git" / "objects" / "x", root / ".git" / "hardlink")
    (root / ".git" / "outside").symlink_to("/etc/passwd")
    (root / "scratch.sock").symlink_to("scratch.sock")
    assert paths(list_folder(root, FolderFilter(exclude=["*.sock"]))) == ["a.bin"]


@pytest.mark.parametrize("pattern", ["", "   ", "# note", "!keep"])
def test_unusable_patterns_are_configuration_errors(pattern: str) -> None:
    with pytest.raises(ConfigurationError, match="not a usable pattern"):
        FolderFilter(exclude=[pattern])


def test_a_symlinked_folder_inside_is_followed(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "m", {"real/w.bin": b"w"})
    (root / "alias").symlink_to("real")
    assert paths(list_folder(root)) == ["alias/", "alias/w.bin", "real/", "real/w.bin"]


# ---- fingerprint -------------------------------------------------------------------------


@pytest.fixture
def shard_folder(tmp_path: Path) -> Path:
    root = write_tree(
        tmp_path / "m",
        {"config.json": b"{}", "shard.safetensors": bytes(4 * 1024 * 1024), "sub": None},
    )
    pin_mtimes(root)
    return root


def fingerprint(root: Path) -> str:
    return fingerprint_listing(list_folder(root))


def test_the_fingerprint_is_stable_for_an_unchanged_folder(shard_folder: Path) -> None:
    assert fingerprint(shard_folder) == fingerprint(shard_folder)


def overwrite_keeping_mtime(path: Path, offset: int, data: bytes) -> None:
    info = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def test_the_fingerprint_sees_sampled_content_even_with_size_and_mtime_kept(
    shard_folder: Path,
) -> None:
    before = fingerprint(shard_folder)
    overwrite_keeping_mtime(shard_folder / "config.json", 0, b"[]")
    after_head = fingerprint(shard_folder)
    assert after_head != before
    # 16 blocks spread over all file bytes; the first lies half a step in.
    total = 2 + 4 * 1024 * 1024
    middle_sample = total // 16 // 2 + 5 * (total // 16) - 2  # offset inside the shard
    overwrite_keeping_mtime(shard_folder / "shard.safetensors", middle_sample, b"\xff")
    assert fingerprint(shard_folder) != after_head


@pytest.mark.parametrize(
    "change",
    ["add a file", "remove a file", "rename a file", "chmod", "touch", "add an empty folder"],
)
def test_the_fingerprint_covers_every_path_size_mode_and_mtime(
    shard_folder: Path, change: str
) -> None:
    before = fingerprint(shard_folder)
    if change == "add a file":
        (shard_folder / "sub" / "new.txt").write_bytes(b"")
    elif change == "remove a file":
        (shard_folder / "config.json").unlink()
    elif change == "rename a file":
        (shard_folder / "config.json").rename(shard_folder / "config2.json")
    elif change == "chmod":
        (shard_folder / "config.json").chmod(0o600)
    elif change == "touch":
        os.utime(shard_folder / "config.json", ns=(0, FIXED_MTIME_NS + 1))
    else:
        (shard_folder / "sub" / "more").mkdir()
    assert fingerprint(shard_folder) != before


def test_a_listing_with_only_empty_files_has_a_fingerprint(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "m", {"a": b"", "b/c": b""})
    assert len(fingerprint(root)) == 64


def test_the_only_excluded_message_names_the_rules(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "m", {"a.pt": b"1"})
    with pytest.raises(LocalFileError, match=r"every file in the folder is excluded.*\*\.pt"):
        list_folder(root, FolderFilter(exclude=["*.pt"]))
