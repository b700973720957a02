package testsuite

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	sdktestsuite "go.temporal.io/sdk/testsuite"

	"github.com/rollgate/rollgate/workflows"
)

// TemporalServer is the Temporal CLI v1.5.1 dev server (Temporal Server 1.29.1), in memory, with
// rollgate's search attributes registered on the default namespace.
type TemporalServer struct {
	HostPort  string
	Namespace string
	UIURL     string // empty when the Web UI is off
	CLI       string // the temporal CLI binary that runs the dev server, for tests that drive it as an operator would
	dev       *sdktestsuite.DevServer
	log       *logBuffer
}

func startTemporal(ctx context.Context, logDir string, progress io.Writer, ui bool) (*TemporalServer, error) {
	bin, err := temporalTool.path(ctx, progress)
	if err != nil {
		return nil, err
	}
	logs, err := newLogBuffer(logDir, "temporal")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	opts := sdktestsuite.DevServerOptions{
		ExistingPath: bin,
		ClientOptions: &client.Options{
			HostPort:  loopback(port),
			Namespace: "default",
			Logger:    log.NewStructuredLogger(slog.New(slog.NewTextHandler(logs, nil))),
		},
		EnableUI:         ui,
		LogLevel:         "warn",
		SearchAttributes: workflows.SearchAttributes(),
		Stdout:           logs,
		Stderr:           logs,
	}
	s := &TemporalServer{HostPort: opts.ClientOptions.HostPort, Namespace: "default", CLI: bin, log: logs}
	if ui {
		uiPort, err := freePort()
		if err != nil {
			return nil, err
		}
		opts.UIPort = fmt.Sprint(uiPort)
		s.UIURL = "http://" + loopback(uiPort)
	}
	dev, err := sdktestsuite.StartDevServer(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("start temporal dev server: %w; its log:\n%s", err, logs.String())
	}
	s.dev = dev
	return s, nil
}

// Client dials a new Temporal client to the dev server, each option applied to its options in
// turn; the caller closes it.
func (s *TemporalServer) Client(options ...func(*client.Options)) (client.Client, error) {
	opts := client.Options{
		HostPort:  s.HostPort,
		Namespace: s.Namespace,
		Logger:    log.NewStructuredLogger(slog.New(slog.NewTextHandler(s.log, nil))),
	}
	for _, o := range options {
		o(&opts)
	}
	return client.Dial(opts)
}

func (s *TemporalServer) stop() {
	_ = s.dev.Stop()
}
