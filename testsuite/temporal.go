package testsuite

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	sdktestsuite "go.temporal.io/sdk/testsuite"

	"github.com/rollgate/rollgate/workflows"
)

// TemporalServer is the Temporal CLI v1.5.1 dev server (Temporal Server 1.29.1), in memory (the
// bed's) or in a SQLite file (one a test starts with StartTemporal), with rollgate's search
// attributes registered on the default namespace.
type TemporalServer struct {
	HostPort  string
	Namespace string
	UIURL     string // empty when the Web UI is off
	CLI       string // the temporal CLI binary that runs the dev server, for tests that drive it as an operator would
	dev       *sdktestsuite.DevServer
	opts      sdktestsuite.DevServerOptions // to start it again
	log       *logBuffer
}

// TemporalOptions start a dev server of a test's own, beside the bed's.
type TemporalOptions struct {
	// DBFile keeps the server's state in this SQLite file instead of memory, so that a server
	// started again on it resumes every workflow where it was.
	DBFile string
	// Port is the frontend's port; zero picks a free one. Started again on the same port, the
	// server is found again by the clients and workers that were connected to it.
	Port int
	// Progress receives a cold build of the Temporal CLI. Default stderr.
	Progress io.Writer
}

// StartTemporal starts a dev server of the test's own; the caller stops it.
func StartTemporal(ctx context.Context, o TemporalOptions) (*TemporalServer, error) {
	if o.Progress == nil {
		o.Progress = os.Stderr
	}
	return startTemporal(ctx, "", o.Progress, false, o)
}

func startTemporal(ctx context.Context, logDir string, progress io.Writer, ui bool, o TemporalOptions) (*TemporalServer, error) {
	bin, err := temporalTool.path(ctx, progress)
	if err != nil {
		return nil, err
	}
	logs, err := newLogBuffer(logDir, "temporal")
	if err != nil {
		return nil, err
	}
	port := o.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	opts := sdktestsuite.DevServerOptions{
		DBFilename:   o.DBFile,
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
	s.opts = opts
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *TemporalServer) start(ctx context.Context) error {
	dev, err := sdktestsuite.StartDevServer(ctx, s.opts)
	if err != nil {
		return fmt.Errorf("start temporal dev server: %w; its log:\n%s", err, s.log.String())
	}
	s.dev = dev
	return nil
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

// Stop stops a dev server started with StartTemporal, as an operator would (SIGINT), and waits
// for it to exit.
func (s *TemporalServer) Stop() { s.stop() }

// Restart stops the server and starts it again on the same port and database file: with a
// DBFile, every workflow resumes where it was, and connected clients and workers reconnect by
// themselves.
func (s *TemporalServer) Restart(ctx context.Context) error {
	s.stop()
	return s.start(ctx)
}

// Logs is what the server printed so far, for a failure message.
func (s *TemporalServer) Logs() string { return s.log.String() }
