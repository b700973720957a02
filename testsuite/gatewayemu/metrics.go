package gatewayemu

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// dataPlaneMetrics count the data plane's answers as a gateway exporter would: per API, stage,
// deployment and side (canary or stable), by status class, with a latency histogram. Every label
// value comes from the control plane (an answer is counted only once a stage served it), so a
// client cannot add series by choosing paths.
type dataPlaneMetrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newDataPlaneMetrics() *dataPlaneMetrics {
	m := &dataPlaneMetrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rollgate", Subsystem: "gateway", Name: "requests_total",
			Help: "Data-plane answers of the API Gateway emulator, by API, stage, deployment, canary (true|false) and status class (2xx, 4xx, 5xx, …).",
		}, []string{"api", "stage", "deployment", "canary", "status_class"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "rollgate", Subsystem: "gateway", Name: "request_duration_seconds",
			Help:    "Data-plane latency of the API Gateway emulator (authorizer and backend included), by API, stage, deployment and canary.",
			Buckets: prometheus.DefBuckets,
		}, []string{"api", "stage", "deployment", "canary"}),
	}
	m.registry.MustRegister(m.requests, m.latency)
	return m
}

// meter wraps the data plane's answer to one request; done records it if a stage served it
// (the answer names its deployment).
func (e *Emulator) meter(w http.ResponseWriter) (http.ResponseWriter, func(apiID, stage string)) {
	rec := &statusRecorder{ResponseWriter: w}
	start := time.Now()
	return rec, func(apiID, stage string) {
		deployment := w.Header().Get(DeploymentHeader)
		if deployment == "" {
			return // no such API or stage: API Gateway reports no metrics for it either
		}
		canary := w.Header().Get(CanaryHeader)
		e.metrics.requests.WithLabelValues(apiID, stage, deployment, canary, statusClass(rec.status())).Inc()
		e.metrics.latency.WithLabelValues(apiID, stage, deployment, canary).Observe(time.Since(start).Seconds())
	}
}

func statusClass(code int) string { return strconv.Itoa(code/100) + "xx" }

// statusRecorder remembers the status an answer was sent with.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (and the reverse proxy's flushing) reach the real writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// MetricsHandler serves the data-plane metrics in Prometheus's exposition format.
func (e *Emulator) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(e.metrics.registry, promhttp.HandlerOpts{})
}

// ServeMetrics serves the data-plane metrics at /metrics on a listener of their own (a free
// loopback port), so that no exporter path can meet an AWS API path on the control or data
// plane. It is a test bed's exporter: loopback only and without authentication. It stops when
// the emulator closes; it returns the listener's host:port, a Prometheus scrape target.
func (e *Emulator) ServeMetrics() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", e.MetricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		_ = srv.Serve(l)
	}()
	go func() {
		defer e.wg.Done()
		<-e.ctx.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	return l.Addr().String(), nil
}
