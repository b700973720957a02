package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/workflows"
)

var shared testsuite.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// starter builds the real binary once per test run, into a folder of its own.
func starter(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rollgate-starter-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "starter")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build starter: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type cli struct {
	bin string
	env []string
}

func (c cli) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errorsAs(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatal(err)
	}
	return code, o.String(), e.String()
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*target = e
	return ok
}

// bedCLI is the starter wired to the bed's servers, as a user's environment would wire it.
func bedCLI(t *testing.T, b *testsuite.Bed) cli {
	c := cli{bin: starter(t)}
	for _, kv := range b.Env() {
		c.env = append(c.env, kv[0]+"="+kv[1])
	}
	return c
}

func writeSpec(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "release.yaml")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStarter_BadInputGetsOneClearLineAndTheRightExitCode(t *testing.T) {
	c := cli{bin: starter(t), env: []string{"TEMPORAL_ADDRESS=127.0.0.1:1"}}
	bad := writeSpec(t, map[string]any{"service": "", "gateway": map[string]any{"kind": "ftp"}})
	code, _, stderr := c.run(t, "deploy", "-f", bad)
	if code != 3 || !strings.Contains(stderr, "gateway.kind") || !strings.Contains(stderr, "canary.steps") || strings.Contains(stderr, "goroutine") {
		t.Fatalf("invalid spec: exit %d\n%s", code, stderr)
	}
	unknown := filepath.Join(t.TempDir(), "typo.yaml")
	_ = os.WriteFile(unknown, []byte("service: orders\ncanaryy: {}\n"), 0o644)
	if code, _, stderr := c.run(t, "deploy", "-f", unknown); code != 3 || !strings.Contains(stderr, "canaryy") {
		t.Fatalf("unknown field: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := c.run(t, "deploy", "-f", "/nonexistent.yaml"); code != 1 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("missing file: exit %d\n%s", code, stderr)
	}
	// The documented example spec is valid: the starter gets as far as dialling Temporal.
	if code, _, stderr := c.run(t, "deploy", "-f", "testdata/release.yaml"); code != 1 || !strings.Contains(stderr, "cannot reach Temporal") {
		t.Fatalf("example spec: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := c.run(t, "status", "abcdefghij/prod"); code != 1 || !strings.Contains(stderr, "cannot reach Temporal at 127.0.0.1:1") {
		t.Fatalf("unreachable Temporal: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := c.run(t, "rollback", "not-a-deployment"); code != 3 || !strings.Contains(stderr, "<apiId>/<stage>") {
		t.Fatalf("bad deployment name: exit %d\n%s", code, stderr)
	}
	for _, bad := range []struct {
		args []string
		says string
	}{
		{[]string{"rollback", "abcdefghij/prod"}, "--reason"},
		{[]string{"rollback", "abcdefghij/prod", "--reason", "x", "--notify", "oncall"}, "--notify goes with --release"},
		{[]string{"rotate-key", "--transit-key", "k", "--reason", "x"}, "issuer"},
		{[]string{"rotate-key", "--issuer", "https://i", "--transit-key", "k", "--jwks-bucket", "b", "--reason", "x", "--on-rollback", "shrug"}, "on-rollback"},
		{[]string{"audit", "abcdefghij/prod", "--runs", "0"}, "--runs"},
		{[]string{"audit", "abcdefghij/prod", "--output", "JSON"}, `"JSON": allowed text or json`},
		{[]string{"status", "abcdefghij/prod", "-o", "yaml"}, `"yaml": allowed text or json`},
		{[]string{"deploy", "-f", "testdata/release.yaml", "--reason", strings.Repeat("x", 2000)}, "reason"},
	} {
		if code, _, stderr := c.run(t, bad.args...); code != 3 || !strings.Contains(stderr, bad.says) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d\n%s", bad.args, code, stderr)
		}
	}
}

func TestStarter_DeployWaitExitsWithTheOutcome(t *testing.T) {
	b := shared.Bed(t)
	c := bedCLI(t, b)
	r, err := testsuite.ProvisionRelease(context.Background(), b, "clitest")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	target := r.APIID + "/" + r.Stage

	code, stdout, stderr := c.run(t, "deploy", "-f", writeSpec(t, r.Spec("v2", 10*time.Second)), "--wait", "--output", "json")
	var res workflows.DeployResult
	if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || res.Outcome != workflows.OutcomePromoted {
		t.Fatalf("deploy --wait: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "promoting the canary") {
		t.Fatalf("no progress on stderr:\n%s", stderr)
	}
	if code, _, stderr := c.run(t, "watch", "abcdefghij/nope"); code != 1 || !strings.Contains(stderr, "no deployment deploy/abcdefghij/nope") {
		t.Fatalf("watch of an unknown deployment: exit %d\n%s", code, stderr)
	}
	if code, stdout, _ := c.run(t, "watch", target); code != 0 || !strings.Contains(stdout, "outcome: promoted") {
		t.Fatalf("watch of a finished deployment: exit %d\n%s", code, stdout)
	}
	if code, stdout, _ := c.run(t, "status", target); code != 0 || !strings.Contains(stdout, "promoted") {
		t.Fatalf("status: exit %d\n%s", code, stdout)
	}
	if code, _, stderr := c.run(t, "rollback", target, "--reason", "too late"); code != 1 || !strings.Contains(stderr, "finished") {
		t.Fatalf("rollback of a finished deployment: exit %d\n%s", code, stderr)
	}

	var hist []struct{ DeploymentID string }
	if code, out, stderr := c.run(t, "history", target, "--output", "json"); code != 0 || json.Unmarshal([]byte(out), &hist) != nil || len(hist) != 1 || hist[0].DeploymentID != res.ReleaseDeploymentID {
		t.Fatalf("history: exit %d\n%s\n%s", code, out, stderr)
	}
	var sum []struct {
		KID            string
		Issued, Active int
	}
	if code, out, stderr := c.run(t, "tokens", "--output", "json"); code != 0 || json.Unmarshal([]byte(out), &sum) != nil || len(sum) < 2 {
		t.Fatalf("tokens: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, stdout, stderr := c.run(t, "rollback", target, "--release", "latest", "--reason", "regression"); code != 0 || !strings.Contains(stdout, "verified: true") {
		t.Fatalf("rollback of the finished release: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// The audit trail joins the deployment's history and the release rollback's (visibility, which
	// finds the runs, may lag a moment behind).
	trail := regexp.MustCompile(`(?s)deploy .*→ release of clitest.*finished .*→ promoted.*rollback-release .*regression  → release latest.*finished .*→ rolled back; verified: true`)
	var out string
	for range 25 {
		if _, out, _ = c.run(t, "audit", target); trail.MatchString(out) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !trail.MatchString(out) {
		t.Fatalf("audit:\n%s", out)
	}

	code, stdout, stderr = c.run(t, "deploy", "-f", writeSpec(t, r.Spec("v3", 10*time.Second)), "--wait")
	if code != 2 || !strings.Contains(stdout, "rolled-back") || !strings.Contains(stdout, "verified: true") {
		t.Fatalf("broken release: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}

	code, stdout, stderr = c.run(t, "revoke", "--subject", r.Clients[0], "--issuer", r.Issuer, "--transit-key", r.Key,
		"--reason", "laptop stolen", "--proof", target, "--audience", "orders")
	if code != 0 || !strings.Contains(stdout, "1 of 1 sample tokens rejected") {
		t.Fatalf("revoke: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	code, stdout, stderr = c.run(t, "rotate-key", "--issuer", r.Issuer, "--transit-key", r.Key, "--jwks-bucket", r.Bucket, "--cache-ttl", "1s",
		"--clients", "clitest-shipping", "--audience", "orders", "--proof", target, "--reason", "quarterly")
	if code != 0 || !strings.Contains(stdout, "outcome: promoted") {
		t.Fatalf("rotate-key: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if code, _, stderr := c.run(t, "revoke", "--subject", "x", "--kid", "k-v1", "--issuer", r.Issuer, "--transit-key", r.Key, "--reason", "x"); code != 3 || !strings.Contains(stderr, "exactly one") {
		t.Fatalf("revoke with two selectors: exit %d\n%s", code, stderr)
	}
	defer func() {
		// Visibility is eventually consistent: the list catches up within a few seconds.
		var rows []struct{ WorkflowID, Service, Stage, Phase string }
		for range 50 {
			code, out, stderr := c.run(t, "list", "--service", "clitest", "--output", "json")
			if code != 0 {
				t.Fatalf("list: exit %d\n%s", code, stderr)
			}
			if json.Unmarshal([]byte(out), &rows) == nil && len(rows) == 2 && rows[0].Phase == "rolled-back" {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if len(rows) != 2 || rows[0].Phase != "rolled-back" || rows[1].Phase != "promoted" || rows[0].Stage != target {
			t.Fatalf("list --service clitest: %+v", rows)
		}
		if code, out, _ := c.run(t, "list", "--phase", "baking"); code != 0 || !strings.Contains(out, "no deployments match") {
			t.Fatalf("list --phase baking: exit %d\n%s", code, out)
		}
	}()
}
