"""Dock-status jobs: creation, status derived from timestamps, and their effect on models."""

from __future__ import annotations

import math
import secrets
import uuid
from typing import Any

from .state import EmulatorState
from .store import JobRow, ModelRow

# Model states persisted in SQLite.
UPLOADING, IMPORTING, READY, FAILED = "uploading", "importing", "ready", "failed"
DEPLOYING, DEPLOYED, UNDEPLOYING = "deploying", "deployed", "undeploying"


def new_job(
    state: EmulatorState,
    model_id: str,
    action: str,
    *,
    outcome: str = "SUCCESS",
    message: str | None = None,
) -> JobRow:
    """Create and persist a job; its outcome is fixed now, its status follows the clock."""
    token = secrets.token_urlsafe(24) if action == "EXPORT" else None
    job = JobRow(
        id=f"ds-{uuid.uuid4()}",
        model_id=model_id,
        action=action,
        created_at=state.now(),
        duration=state.config.job_seconds,
        outcome=outcome,
        message=message,
        token=token,
        applied=False,
    )
    state.store.insert_job(job)
    return job


def job_status(job: JobRow, now: float) -> tuple[str, int]:
    """(status, percentageComplete) at emulator time now; monotonic in now."""
    elapsed = now - job.created_at
    if job.duration <= 0 or elapsed >= job.duration:
        return job.outcome, 100
    pct = math.floor(max(0.0, elapsed) / job.duration * 100)
    return "IN_PROGRESS", min(99, pct)


_EFFECTS: dict[tuple[str, str], str] = {
    ("IMPORT", "SUCCESS"): READY,
    ("IMPORT", "FAILED"): FAILED,
    ("DEPLOY", "SUCCESS"): DEPLOYED,
    ("DEPLOY", "FAILED"): READY,
    ("UNDEPLOY", "SUCCESS"): READY,
    ("UNDEPLOY", "FAILED"): DEPLOYED,
}


def settle(state: EmulatorState, model_id: str) -> ModelRow | None:
    """Apply the effects of every finished, not yet applied job of a model; return it."""
    now = state.now()
    for job in state.store.unapplied_jobs(model_id):
        status, _ = job_status(job, now)
        if status == "IN_PROGRESS":
            continue
        effect = _EFFECTS.get((job.action, status))
        if effect is not None:
            state.store.set_model_state(model_id, effect)
        state.store.mark_applied(job.id)
    return state.store.get_model(model_id)


def job_document(job: JobRow, now: float, download_origin: str) -> dict[str, Any]:
    """The dock-status document (see "API notes" in the docs)."""
    status, pct = job_status(job, now)
    doc: dict[str, Any] = {
        "_id": job.id,
        "modelId": job.model_id,
        "jobType": "MODELS",
        "action": job.action,
        "status": status,
        "percentageComplete": pct,
    }
    if job.action == "EXPORT" and status == "SUCCESS":
        url = f"{download_origin}/api/v1/account/exports/{job.id}?token={job.token}"
        doc["response"] = {"downloadUrl": " " + url}
    if status == "FAILED":
        doc["message"] = job.message or "job failed"
    return doc


def short_document(job: JobRow, now: float) -> dict[str, Any]:
    """The complete/deploy/undeploy response shape with the docs' `dock-statusId` key."""
    status, _ = job_status(job, now)
    return {
        "dock-statusId": job.id,
        "modelId": job.model_id,
        "jobType": "MODELS",
        "action": job.action,
        "status": status,
    }
