"""The model and job routes and create_app(), which wires every route."""

from __future__ import annotations

import asyncio

from aiohttp import web

from . import jobs
from .config import EmulatorConfig
from .control import add_control_routes
from .download import download_export
from .errors import ApiError
from .faults import STATE, add_request_id, emulator_middleware
from .housekeeping import sweep_on_start
from .http_common import MAX_JSON_BYTES, origin, read_json
from .sessions import complete_session, start_session, upload_chunk
from .state import EmulatorState
from .store import ModelRow
from .validation import validate_deploy

API = "/api/public"


def _model(state: EmulatorState, model_id: str) -> ModelRow:
    model = jobs.settle(state, model_id)
    if model is None:
        raise ApiError(404, "MODEL_NOT_FOUND", f"model {model_id} not found")
    return model


async def export_model(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    await read_json(request, optional=True)
    model = _model(state, request.match_info["model_id"])
    if model.state in (jobs.UPLOADING, jobs.IMPORTING, jobs.FAILED):
        raise ApiError(409, "MODEL_NOT_READY", f"model is {model.state}, not imported")
    if model.discarded:
        raise ApiError(409, "MODEL_BYTES_DISCARDED", "model bytes were discarded (storage=discard)")
    job = jobs.new_job(state, model.id, "EXPORT")
    return web.json_response(jobs.job_document(job, state.now(), origin(request, state)))


async def deploy_model(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await read_json(request)
    validate_deploy(request.query.get("modelType"), body)
    model = _model(state, request.match_info["model_id"])
    if model.state in (jobs.DEPLOYING, jobs.UNDEPLOYING):
        raise ApiError(409, "MODEL_BUSY", f"model is {model.state}")
    if model.state not in (jobs.READY, jobs.DEPLOYED):
        raise ApiError(409, "MODEL_NOT_READY", f"model is {model.state}, not ready to deploy")
    state.store.set_model_state(model.id, jobs.DEPLOYING)
    job = jobs.new_job(state, model.id, "DEPLOY")
    jobs.settle(state, model.id)
    return web.json_response(jobs.short_document(job, state.now()))


async def undeploy_model(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    await read_json(request, optional=True)
    model = _model(state, request.match_info["model_id"])
    if model.state != jobs.DEPLOYED:
        raise ApiError(409, "MODEL_NOT_DEPLOYED", f"model is {model.state}, not deployed")
    state.store.set_model_state(model.id, jobs.UNDEPLOYING)
    job = jobs.new_job(state, model.id, "UNDEPLOY")
    jobs.settle(state, model.id)
    return web.json_response(jobs.short_document(job, state.now()))


async def dock_status(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    job = state.store.get_job(request.match_info["dock_status_id"])
    if job is None:
        raise ApiError(404, "JOB_NOT_FOUND", "dock status not found")
    jobs.settle(state, job.model_id)
    return web.json_response(jobs.job_document(job, state.now(), origin(request, state)))


def create_app(config: EmulatorConfig | None = None) -> web.Application:
    """Build the emulator application; its state is at app[STATE]."""
    state = EmulatorState(config or EmulatorConfig())
    app = web.Application(middlewares=[emulator_middleware], client_max_size=MAX_JSON_BYTES)
    app[STATE] = state
    r = app.router
    r.add_post(f"{API}/files/session/start", start_session, name="start")
    r.add_post(f"{API}/files/session/{{session_id}}/complete", complete_session, name="complete")
    r.add_post(f"{API}/files/session/{{session_id}}", upload_chunk, name="chunk")
    r.add_post(f"{API}/models/{{model_id}}/export", export_model, name="export")
    r.add_post(f"{API}/models/{{model_id}}/deploy", deploy_model, name="deploy")
    r.add_post(f"{API}/models/{{model_id}}/undeploy", undeploy_model, name="undeploy")
    r.add_get(f"{API}/dock-status/{{dock_status_id}}", dock_status, name="dock_status")
    r.add_get("/api/v1/account/exports/{job_id}", download_export, name="download")
    add_control_routes(app)
    app.on_response_prepare.append(add_request_id)

    async def _close(_: web.Application) -> None:
        state.stopping.set()
        await asyncio.to_thread(state.close)

    async def _housekeeping(_: web.Application) -> None:
        await sweep_on_start(state)

    app.on_startup.append(_housekeeping)
    app.on_shutdown.append(_stop_stalls)
    app.on_cleanup.append(_close)
    return app


async def _stop_stalls(app: web.Application) -> None:
    app[STATE].stopping.set()
