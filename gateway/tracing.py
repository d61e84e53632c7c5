"""Traces: where a request spends its time, as OpenTelemetry spans. Off by default. A
leaf module: every package may use it.

With `GATEWAY_OTLP_ENDPOINT` set, `start` makes a tracer of the gateway's own (the
process-wide provider is left alone, so no library traces on its own) and spans go out
over OTLP/HTTP in batches. A request is one trace: `request` (the server span, child
of the caller's W3C `traceparent` if it sends one), `admission`, `decisions`, a
`source_call` per call to a source (its `traceparent` sent with it), `recording`; the
sequencer's passes are traces of their own (`log_integration`).

No personal data goes into a span: names are fixed, and attributes are only what
`span` is given: codes, counts, the client's system id, connector names, routes and
outcomes, never a subject, an officer, a case, a token, a query or a body
(`tests/integration/test_tracing.py` searches every span for them). Off, `span` is one
check of a module variable.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["enabled", "inject", "request_span", "span", "start", "stop"]

SERVICE: Final = "lienthong-gateway"
_PROPAGATOR: Final = TraceContextTextMapPropagator()
"""W3C trace context only: a caller's baggage could carry anything."""
Attribute = str | int | float | bool

_tracer: Tracer | None = None
_provider: TracerProvider | None = None


class _Off:
    """The span of a gateway that does not trace: nothing at all."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_OFF: Final = _Off()


def enabled() -> bool:
    """Whether spans are being made."""
    return _tracer is not None


def start(endpoint: str | None = None, *, provider: TracerProvider | None = None) -> None:
    """Trace from now on: to the OTLP/HTTP `endpoint` (e.g. `http://collector:4318`),
    or into `provider` (a test's, with its own exporter)."""
    global _tracer, _provider
    if provider is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        if not endpoint:
            raise ValueError("an OTLP endpoint or a provider is needed to trace")
        provider = SdkProvider(resource=Resource.create({"service.name": SERVICE}))
        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider = provider
    _tracer = provider.get_tracer(SERVICE)


def stop() -> None:
    """Stop tracing; spans still queued are sent first."""
    global _tracer, _provider
    provider, _tracer, _provider = _provider, None, None
    if provider is not None:
        provider.shutdown()


def span(name: str, attributes: Mapping[str, Attribute] | None = None) -> Any:
    """A span named `name` around a block, child of the current one; `_OFF` when off.

    An exception leaving the block marks the span as an error, by its type only.
    """
    tracer = _tracer
    if tracer is None:
        return _OFF
    return _recorded(tracer, name, attributes, SpanKind.INTERNAL, None)


def request_span(
    headers: Mapping[str, str], attributes: Mapping[str, Attribute] | None = None
) -> Any:
    """The server span of one request, child of the caller's `traceparent` if valid."""
    tracer = _tracer
    if tracer is None:
        return _OFF
    parent = _PROPAGATOR.extract(headers)
    return _recorded(tracer, "request", attributes, SpanKind.SERVER, parent)


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current span's `traceparent` to a source call's headers (when tracing)."""
    if _tracer is not None:
        _PROPAGATOR.inject(headers)


@contextmanager
def _recorded(
    tracer: Tracer,
    name: str,
    attributes: Mapping[str, Attribute] | None,
    kind: SpanKind,
    parent: otel_context.Context | None,
) -> Iterator[Any]:
    with tracer.start_as_current_span(
        name,
        context=parent,
        kind=kind,
        attributes=dict(attributes or {}),
        record_exception=False,  # an exception's message may name a person
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
