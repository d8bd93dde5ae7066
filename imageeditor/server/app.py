"""The grpc.aio server: our service over one process's adapters, health checking and
reflection, and a clean stop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor

from imageeditor.core.lifecycle import Lifecycle
from imageeditor.core.ports import Dispatcher, ProcessAdapters
from imageeditor.core.service import TaskService
from imageeditor.core.settings import Settings, bad_setting
from imageeditor.server.auth import Authenticator
from imageeditor.server.offload import Offload
from imageeditor.server.quotas import FailureThrottle
from imageeditor.server.rpc import tolerant
from imageeditor.server.rpc_metrics import MetricsInterceptor
from imageeditor.server.servicer import ImageEditorServicer
from imageeditor.server.watch import TaskWatcher
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.v1 import image_editor_service_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ImageEditorService"].full_name


def build_servicer(
    adapters: ProcessAdapters, *, dispatcher: Dispatcher, lifecycle: Lifecycle, settings: Settings
) -> ImageEditorServicer:
    """The service layer and the servicer over `adapters`, in either mode: embedded mode
    dispatches to its worker threads, production mode to the broker."""
    service = TaskService(
        store=adapters.tasks,
        blobs=adapters.blobs,
        dispatcher=dispatcher,
        lifecycle=lifecycle,
        cache=adapters.cache,
        limiter=adapters.limiter,
        settings=settings,
        deliveries=adapters.deliveries,
    )
    return ImageEditorServicer(
        service,
        TaskWatcher(adapters.tasks, adapters.events),
        Authenticator(
            adapters.api_keys,
            FailureThrottle(settings.auth_failure_rate, settings.auth_failure_burst),
        ),
        settings,
        links=adapters.links,
        offload=Offload(settings.edge_cpu_threads),
    )


class _Registrations:
    """Stands in for the server while the generated code registers the method handlers."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass  # rebuilt from the method handlers below

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.handlers.update(handlers)


def add_service(servicer: ImageEditorServicer, server: grpc.aio.Server) -> None:
    """Register the servicer as the generated code would, with tolerant request parsing
    (imageeditor.server.rpc.tolerant): bytes that do not parse reach the method, which refuses
    them."""
    registrations = _Registrations()
    pb_grpc.add_ImageEditorServiceServicer_to_server(servicer, registrations)  # type: ignore[no-untyped-call]
    handlers = {
        name: handler._replace(request_deserializer=tolerant(handler.request_deserializer))
        for name, handler in registrations.handlers.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from the settings' PEM files (mutual TLS with a client CA); None for
    plain text. BAD_SETTING when only one of certificate and key is given, or one is unreadable."""
    if not settings.tls_cert_file and not settings.tls_key_file:
        if settings.tls_client_ca_file:
            raise bad_setting(_CLIENT_CA, "needs the server's own certificate and key")
        return None
    if not (settings.tls_cert_file and settings.tls_key_file):
        raise bad_setting(_CERT, "set both IMAGEEDITOR_TLS_CERT_FILE and IMAGEEDITOR_TLS_KEY_FILE")
    try:
        chain = Path(settings.tls_cert_file).read_bytes()
        key = Path(settings.tls_key_file).read_bytes()
        client_ca = (
            Path(settings.tls_client_ca_file).read_bytes() if settings.tls_client_ca_file else None
        )
    except OSError as exc:
        raise bad_setting(_CERT, f"cannot read {exc.filename}: {exc.strerror}") from None
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


_CERT, _CLIENT_CA = "IMAGEEDITOR_TLS_CERT_FILE", "IMAGEEDITOR_TLS_CLIENT_CA_FILE"


@dataclass
class RunningServer:
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int

    async def stop(self, grace: float) -> None:
        """Report NOT_SERVING first, so balancers drain us, then let calls finish for `grace`."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def start_server(
    servicer: ImageEditorServicer, settings: Settings, *, traced: bool = False
) -> RunningServer:
    """Start serving; with `traced`, every call gets a server span (imageeditor.core.telemetry);
    with
    metrics on, every call is counted and timed (imageeditor.server.rpc_metrics)."""
    limit = settings.max_message_bytes
    interceptors: list[grpc.aio.ServerInterceptor] = []
    if settings.metrics_port:
        interceptors.append(MetricsInterceptor())
    if traced:
        interceptors.append(aio_server_interceptor())
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            # Long streams end here at the latest; clients resume with after_version.
            ("grpc.max_connection_age_ms", 30 * 60 * 1000),
            ("grpc.max_connection_age_grace_ms", 60 * 1000),
            ("grpc.keepalive_time_ms", 60 * 1000),
            # A burst of calls waits for the loop to take each up; gRPC's own limits (1,000,
            # hard 3,000) would end the rest CANCELLED, a status clients do not retry.
            ("grpc.server.max_pending_requests", settings.max_pending_calls),
            ("grpc.server.max_pending_requests_hard_limit", 2 * settings.max_pending_calls),
        ],
    )
    add_service(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    credentials = server_credentials(settings)
    if credentials is None:
        port = server.add_insecure_port(settings.listen_address)
    else:
        port = server.add_secure_port(settings.listen_address, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {settings.listen_address}")
    await server.start()
    for name in (health.OVERALL_HEALTH, SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, health_servicer, port)
