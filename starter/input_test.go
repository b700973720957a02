package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runStdin runs the starter with the given stdin and a deadline: a spec read must end, not fill
// the memory.
func (c cli) runStdin(t *testing.T, stdin *bytes.Reader, args ...string) (code int, stderr string) {
	t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdin = stdin
	var e bytes.Buffer
	cmd.Stderr = &e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if exit, ok := err.(*exec.ExitError); ok {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("%v still reading after 2 minutes", args)
	}
	return code, e.String()
}

func TestStarter_AnOversizedSpecIsRefusedWithExit3(t *testing.T) {
	c := cli{bin: starter(t), env: []string{"TEMPORAL_ADDRESS=127.0.0.1:1"}}
	code, stderr := c.runStdin(t, bytes.NewReader(nil), "deploy", "-f", "/dev/zero")
	if code != 3 || !strings.Contains(stderr, "1 MiB") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("/dev/zero: exit %d\n%s", code, stderr)
	}
	example, err := os.ReadFile("testdata/release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	huge := append(append([]byte{}, example...), []byte("\n# "+strings.Repeat("x", 2<<20)+"\n")...)
	if code, stderr := c.runStdin(t, bytes.NewReader(huge), "deploy", "-f", "-"); code != 3 || !strings.Contains(stderr, "1 MiB") {
		t.Fatalf("2 MiB on stdin: exit %d\n%s", code, stderr)
	}
	// The example spec read from stdin is fine: the starter gets as far as dialling Temporal.
	if code, stderr := c.runStdin(t, bytes.NewReader(example), "deploy", "-f", "-"); code != 1 || !strings.Contains(stderr, "cannot reach Temporal") {
		t.Fatalf("example on stdin: exit %d\n%s", code, stderr)
	}
}

func TestStarter_SpecProblemsAreAllListedAtOnce(t *testing.T) {
	c := cli{bin: starter(t), env: []string{"TEMPORAL_ADDRESS=127.0.0.1:1"}}
	example, err := os.ReadFile("testdata/release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	typos := strings.Replace(string(example), "service: orders", "servise: orders", 1)
	typos = strings.Replace(typos, "  issuer: https://issuer.example.com/orders", "  issuer: http://127.attacker.example/orders\n  colour: blue", 1)
	code, _, stderr := c.run(t, "deploy", "-f", write("typos.yaml", typos))
	for _, want := range []string{"servise: unknown field", "auth.colour: unknown field", "service: ", "auth.issuer:"} {
		if code != 3 || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, want %q in\n%s", code, want, stderr)
		}
	}
	twice := strings.Replace(string(example), "  stage: prod", "  stage: prod\n  stage: dev", 1)
	if code, _, stderr := c.run(t, "deploy", "-f", write("twice.yaml", twice)); code != 3 || !strings.Contains(stderr, "key appears twice") {
		t.Fatalf("duplicate key: exit %d\n%s", code, stderr)
	}
}

func TestStarter_WorkflowInputsAreValidatedNamingTheFlag(t *testing.T) {
	c := cli{bin: starter(t), env: []string{"TEMPORAL_ADDRESS=127.0.0.1:1"}}
	rotate := []string{"rotate-key", "--issuer", "https://issuer.example.com", "--transit-key", "orders-issuer", "--jwks-bucket", "issuer", "--reason", "x"}
	revoke := []string{"revoke", "--issuer", "https://issuer.example.com", "--transit-key", "orders-issuer", "--reason", "x"}
	for _, bad := range []struct {
		args []string
		says string
	}{
		{append(rotate, "--key-type", ""), `--key-type: "": allowed rsa-2048`},
		{append(rotate, "--issuer", "http://127.attacker.example"), "--issuer: "},
		{append(rotate, "--clients", "billing,bad name"), "--clients[1]"},
		{append(rotate, "--clients", "billing"), "--audience: at least one audience is required"},
		{append(revoke, "--subject", "a", "--proof", "abcdefghij/prod"), "--audience: at least one audience is required"},
		{append(rotate, "--cache-ttl", "48h"), "--cache-ttl: 48h0m0s: allowed 0s to 24h0m0s"},
		{append(rotate, "--reason", strings.Repeat("x", 2000)), "--reason: 2000 characters"},
		{append(revoke, "--kid", "other-key-v3"), "--kid: "},
		{append(revoke, "--subject", "a", "--kid", "orders-issuer-v1"), "--subject|--kid|--jti|--before"},
		{append(revoke, "--jti", "a,,b"), "--jti[1]"},
		{append(revoke, "--subject", "a", "--flush", "abcdefghij/prod", "--flush", "abcdefghij"), "--flush: "},
		{append(revoke, "--subject", "a", "--flush", "abcdefghij/prod", "--no-flush"), "--no-flush: cannot be combined with --flush"},
		{append(revoke, "--subject", "a", "--flush-after", "1h"), "--flush-after: 1h0m0s: allowed 0s to 5m0s"},
		{[]string{"rollback", "abcdefghij/prod", "--release", "not a release", "--reason", "x"}, "--release: "},
		{[]string{"pause", "abcdefghij/prod", "--reason", strings.Repeat("x", 2000)}, "--reason: 2000 characters"},
		{[]string{"rollback", "abcdefghij/prod", "--reason", "x\x1b[2J"}, "--reason: must be printable"},
		{[]string{"promote", "abcdefghij/prod", "--actor", ""}, "--actor: required"},
	} {
		if code, _, stderr := c.run(t, bad.args...); code != 3 || !strings.Contains(stderr, bad.says) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, want %q in one line\n%s", bad.args[:1], code, bad.says, stderr)
		}
	}
}
