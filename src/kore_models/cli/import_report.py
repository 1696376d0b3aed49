"""What ``kore-models import`` prints: one JSON row and one summary line per file, totals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..results import ImportResult
from .errors import EXIT_OK
from .output import human_bytes, human_rate

__all__ = ["human_line", "import_row", "label_of", "summarise"]


def label_of(path: Path) -> str:
    """``path`` relative to the working folder when it is inside it, else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def import_row(path: Path, is_adapter: bool, result: ImportResult) -> dict[str, Any]:
    """The JSON object of one finished import: which file, then the result's camelCase dump."""
    return {
        "path": str(path),
        "isAdapter": is_adapter,
        **result.model_dump(by_alias=True, mode="json", exclude={"job"}),
    }


def human_line(row: dict[str, Any], label: str) -> str | None:
    """The summary line of one import row (None for a failed one: its error is printed)."""
    if row.get("skipped"):
        return (
            f"skipped {label}: already imported as model {row.get('modelId')} "
            f"({row.get('status') or 'unknown'})"
        )
    if "error" in row:
        return None
    size = f"{human_bytes(row['bytes'])} in {row['seconds']:.1f} s"
    rate = human_rate(row["bytesSent"], row["seconds"])
    resumed = (
        f", resumed: {row['chunksResumed']} chunks were already on the server, "
        f"{human_bytes(row['bytesSent'])} sent now"
        if row["resumed"]
        else ""
    )
    retries = f", {row['retries']} retries" if row["retries"] else ""
    if row["status"] == "SUCCESS":
        head = f"imported {label}: model {row['modelId']} (job {row['dockStatusId']} SUCCESS)"
    else:
        head = (
            f"uploaded {label}: model {row['modelId']}, the server is processing it "
            f"(check: kore-models status {row['dockStatusId']})"
        )
    digest = f", sha256 {row['sha256']}" if row.get("sha256") else ""
    verified = ", verified on the server" if row.get("verified") else ""
    return f"{head}, {size} ({rate}{resumed}{retries}){digest}{verified}"


def summarise(rows: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """The totals of a run of several imports; its exit code is the worst of theirs."""
    codes = [int(r.get("exitCode", EXIT_OK)) for r in rows]
    done = [r for r in rows if "error" not in r and not r.get("skipped")]
    return {
        "files": len(rows),
        "imported": len(done),
        "skipped": sum(1 for r in rows if r.get("skipped")),
        "failed": sum(1 for r in rows if "error" in r),
        "bytes": sum(int(r.get("bytes", 0)) for r in done),
        "seconds": round(seconds, 3),
        "exitCode": max(codes, default=EXIT_OK),
    }
