"""Tracing: every Thanos component the plan runs sends its spans over OTLP to one collector."""

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import StrictModel

RATIO_SAMPLERS = ("traceidratiobased", "parentbasedtraceidratiobased")
"""The samplers that read `sampler-param` (the ratio of traces kept)."""
_HOST_PORT_RE = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([-.A-Za-z0-9]*[A-Za-z0-9])?):\d{1,5}$")


class TracingSpec(StrictModel):
    """OTLP tracing of every Thanos component (`--tracing.config`), one collector for the whole stack."""

    endpoint: str
    """The OTLP collector as `host:port`, e.g. otel-collector.observability.svc:4317 (the scheme is `client-type` and
    `insecure`, never part of it); required."""
    client_type: Literal["grpc", "http"] = "grpc"
    """OTLP over `grpc` (usually port 4317) or `http` (protobuf to /v1/traces, usually 4318); default grpc."""
    insecure: bool = False
    """Send in plain text; off, the exporter speaks TLS and trusts the image's system roots; default false."""
    sampler_type: Literal["alwayssample", "neversample", "traceidratiobased", "parentbasedalwayssample",
                          "parentbasedneversample", "parentbasedtraceidratiobased"] = "parentbasedtraceidratiobased"
    """Which requests are traced: a request carrying `X-Thanos-Force-Tracing` always is, whatever this says;
    `parentbased...` follows the caller's decision when it sent one; default parentbasedtraceidratiobased (Thanos'
    own default when none is given keeps every trace, too many for a busy query tier)."""
    sampler_param: float = Field(default=0.1, ge=0, le=1)
    """The ratio of traces kept by the ratio samplers, 0 to 1 (Thanos would only log a bad one and keep everything);
    default 0.1."""

    @field_validator("endpoint")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if "://" in value:
            raise ValueError(f"{value!r} has a scheme: give host:port only (client-type picks grpc or http, insecure "
                             "plain text or TLS)")
        if not _HOST_PORT_RE.match(value) or not 0 < int(value.rsplit(":", 1)[1]) < 65536:
            raise ValueError(f"{value!r} is not host:port (e.g. otel-collector.observability.svc:4317)")
        return value

    @model_validator(mode="after")
    def _ratio_read(self) -> "TracingSpec":
        if "sampler_param" in self.model_fields_set and self.sampler_type not in RATIO_SAMPLERS:
            raise ValueError(f"sampler-param is read only by {' and '.join(RATIO_SAMPLERS)}, not {self.sampler_type}")
        return self

    def thanos_config(self, service_name: str, attributes: dict[str, str]) -> dict:
        """The `--tracing.config` document of one component: its service name and resource attributes."""
        config: dict = {"client_type": self.client_type, "endpoint": self.endpoint, "insecure": self.insecure,
                        "service_name": service_name, "resource_attributes": attributes,
                        "sampler_type": self.sampler_type}
        if self.sampler_type in RATIO_SAMPLERS:
            config["sampler_param"] = str(self.sampler_param)  # Thanos reads it as a string
        return {"type": "OTLP", "config": config}
