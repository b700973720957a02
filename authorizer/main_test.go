package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	bin := filepath.Join(t.TempDir(), "authorizer")
	if b, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve", "--listen", addr)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for _, kv := range iss.bed.Env() {
		if strings.HasPrefix(kv[0], "AWS_") { // the authorizer needs AWS (DynamoDB) and nothing else of the bed
			cmd.Env = append(cmd.Env, kv[0]+"="+kv[1])
		}
	}
	for k, v := range iss.env(nil) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	iss.secrets.watch(logs)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	t.Cleanup(func() {
		if !exited {
			_ = cmd.Process.Kill()
			<-done
		}
	})

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
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		exited = true
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.Bytes())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("still running 60 s after SIGTERM")
	}
}
