"""The model endpoints: export, deploy and undeploy (each returns a dock-status job)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .._http import Transport, encode_segment
from ..errors import ConfigurationError
from ..types import DeployConfig, JobDocument, ModelType
from ._parse import parse_as

_MODEL_TYPES = ("openSource", "fineTune")


class ModelsAPI:
    """``kore.models`` raw calls: POST /models/{id}/export, /deploy?modelType=, /undeploy."""

    def __init__(self, transport: Transport):
        self._transport = transport

    async def export(self, model_id: str) -> JobDocument:
        """Start an export job; its document carries the download URL once it succeeded."""
        response = await self._transport.request(
            "POST", ["models", encode_segment(model_id, what="model id"), "export"]
        )
        return parse_as(JobDocument, response, what="export")

    async def deploy(
        self, model_id: str, model_type: ModelType, config: DeployConfig | dict[str, Any]
    ) -> JobDocument:
        """Start a deploy job with a validated deploy configuration."""
        if model_type not in _MODEL_TYPES:
            raise ConfigurationError(
                f"model_type must be one of {', '.join(_MODEL_TYPES)}, not {model_type!r}"
            )
        if not isinstance(config, DeployConfig):
            try:
                config = DeployConfig.model_validate(config)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
                )
                raise ConfigurationError(f"invalid deploy config: {problems}") from None
        response = await self._transport.request(
            "POST",
            ["models", encode_segment(model_id, what="model id"), "deploy"],
            params={"modelType": model_type},
            json_body=config.to_api(),
        )
        return parse_as(JobDocument, response, what="deploy")

    async def undeploy(self, model_id: str) -> JobDocument:
        """Start an undeploy job."""
        response = await self._transport.request(
            "POST", ["models", encode_segment(model_id, what="model id"), "undeploy"]
        )
        return parse_as(JobDocument, response, what="undeploy")
