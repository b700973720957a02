package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRun_UnknownCommandLinesAreUsageErrors(t *testing.T) {
	t.Setenv("AWS_LAMBDA_RUNTIME_API", "")
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	for _, args := range [][]string{nil, {"bogus"}, {"serve", "--bogus"}, {"serve", "extra"}} {
		var u usageError
		if err := run(context.Background(), args, logger); !errors.As(err, &u) || !strings.Contains(err.Error(), "authorizer serve") {
			t.Errorf("%q: %v, want the usage", args, err)
		}
	}
}

// The command as an operator runs it: configured only through the environment (ROLLGATE_* and
// the AWS SDK's standard variables), serving until SIGTERM.
func TestServeCommand_RunsFromTheEnvironmentAndStopsOnSIGTERM(t *testing.T) {
	iss := newTestIssuer(t, true)
	m := iss.mint(t, "billing")[0]
	srv := iss.startServeBinary(t, buildAuthorizer(t), nil)
	addr := srv.addr

	status := func(token string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/auth", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	eventually(t, "the server never accepted the good token", func() bool { return status(m.Token) == 200 })
	if got := status(forged("nope")); got != 401 {
		t.Fatalf("forged token: %d", got)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.exited:
		if srv.err != nil {
			t.Fatalf("exit after SIGTERM: %v", srv.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("still running 60 s after SIGTERM")
	}
}
