// Package telemetry turns on OpenTelemetry tracing of rollgate's workflows and activities when
// an OTLP endpoint is configured through the standard OTEL_* variables.
package telemetry

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// Enabled says whether an OTLP trace endpoint is configured and tracing is not turned off.
func Enabled(getenv func(string) string) bool {
	if getenv("OTEL_SDK_DISABLED") == "true" || getenv("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Tracing returns the Temporal interceptor that traces workflows, activities, signals, updates
// and queries (the trace context travels in Temporal headers from the starter to the worker),
// and a shutdown that flushes pending spans. Without an endpoint it returns nil and a no-op.
//
// The exporter reads the standard variables: OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS,
// _PROTOCOL (http/protobuf, the default, or grpc), _CERTIFICATE, _INSECURE, _TIMEOUT; the
// resource OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
func Tracing(ctx context.Context, service string) (interceptor.Interceptor, func(context.Context) error, error) {
	if !Enabled(os.Getenv) {
		return nil, func(context.Context) error { return nil }, nil
	}
	protocol := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exporter sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", "http/protobuf":
		exporter, err = otlptracehttp.New(ctx)
	case "grpc":
		exporter, err = otlptracegrpc.New(ctx)
	default:
		return nil, nil, fmt.Errorf("tracing: OTEL_EXPORTER_OTLP_PROTOCOL %q: rollgate exports http/protobuf or grpc", protocol)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", service)), resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	ic, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{Tracer: tp.Tracer("github.com/rollgate/rollgate")})
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: %w", err)
	}
	return ic, tp.Shutdown, nil
}
