package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rollgate/rollgate/internal/registry"
)

func TestStarter_MonitorStartValidatesNamingTheFlag(t *testing.T) {
	c := cli{bin: starter(t), env: []string{"TEMPORAL_ADDRESS=127.0.0.1:1"}}
	start := []string{"monitor", "start", "--issuer", "https://issuer.example.com", "--transit-key", "orders-issuer", "--webhook", "oncall"}
	for _, bad := range []struct {
		args []string
		says string
	}{
		{append(start, "--interval", "1s"), "--interval: 1s: allowed 10s to 1h0m0s"},
		{append(start, "--revoked-actions", "notify,reissue"), "--revoked-actions[1]: "},
		{append(start, "--renewal-fraction", "0.9"), "--renewal-fraction: 0.9: allowed"},
		{append(start, "--no-revoked", "--no-renewal", "--no-expired"), "--no-revoked|--no-renewal|--no-expired: every signal is off"},
		{append(start, "--provider", "datadog"), "--provider: \"datadog\": allowed prometheus, cloudwatch"},
		{append(start, "--provider", "prometheus", "--unknown-kid-actions", "revoke"), "--unknown-kid-actions[0]: "},
		{append(start, "--max-ratio", "0.5"), "--max-ratio: 0.5: allowed"},
		{append(start, "--expired-actions", "rollback"), "--expired-actions[0]: "},
		{append(start, "--renewal-actions", "notify,reissue"), "--audience: at least one audience is required"},
		{append(start, "--unknown-kid-actions", "notify,rollback"), "--unknown-kid-actions: "},
		{append(start, "--issuance-actions", "disable-key", "--api-key", "a=k1"), "--issuance-actions: "},
		{append(start, "--revoked-actions", "notify,disable-key"), "--api-key: required: a policy disables API keys"},
		{append(start, "--api-key", "billing"), "--api-key \"billing\": want CLIENT=KEY_ID"},
		{append(start, "--api-key", "a=k1", "--api-key", "a=k2"), "--api-key[1].Client: \"a\": a client has one API key here (named twice)"},
		{append(start, "--reason", strings.Repeat("x", 2000)), "--reason: 2000 characters"},
		{append(start, "--stale-actions", "rollback"), "--stale-actions[0]: \"rollback\": allowed notify (each once)"},
		{[]string{"monitor", "start", "--issuer", "https://issuer.example.com", "--transit-key", "orders-issuer"}, "--webhook: required: a policy notifies"},
	} {
		if code, _, stderr := c.run(t, bad.args...); code != 3 || strings.Count(stderr, bad.says) != 1 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, want %q in one line\n%s", bad.args[2:], code, bad.says, stderr)
		}
	}
}

// A monitor that acts without notifying (revoke, reissue) needs no webhook: expired_presented,
// which notifies by default, is then off unless its flags are given, and asking it to notify
// without a webhook names the flag.
func TestStarter_MonitorStartWithoutWebhook_ValidUnlessAPolicyNotifies(t *testing.T) {
	c := cli{bin: starter(t), env: []string{"TEMPORAL_ADDRESS=127.0.0.1:1"}}
	start := []string{"monitor", "start", "--issuer", "https://issuer.example.com", "--transit-key", "orders-issuer", "--revoked-actions", "revoke", "--renewal-actions", "reissue", "--audience", "orders"}
	if code, _, stderr := c.run(t, start...); code != 1 || !strings.Contains(stderr, "cannot reach Temporal") {
		t.Fatalf("start without a webhook, nothing notifying: exit %d, want it past validation to the dial\n%s", code, stderr)
	}
	for _, more := range [][]string{{"--expired-actions", "notify"}, {"--expired-threshold", "3"}} {
		if code, _, stderr := c.run(t, append(start, more...)...); code != 3 || !strings.Contains(stderr, "--webhook: required: a policy notifies") {
			t.Errorf("%v without a webhook: exit %d, want the webhook required\n%s", more, code, stderr)
		}
	}
}

// A monitor that cannot observe what its flags ask for (a provider the worker lacks) says so at
// start, from its first judgement, and exits 1; it runs on, and --no-wait returns at once.
func TestStarter_MonitorStartSaysWhatItsFirstJudgementCouldNotObserve(t *testing.T) {
	b := shared.Bed(t)
	r := provisionUnique(t, b, "cliblind")
	c := bedCLI(t, b)
	start := []string{"monitor", "start", "--issuer", r.Issuer, "--transit-key", r.Key, "--interval", "10s", "--webhook", "oncall", "--provider", "prometheus"}
	t.Cleanup(func() { c.run(t, "monitor", "stop", r.Key, "--reason", "test over") })
	code, out, stderr := c.run(t, start...)
	if code != 1 || !strings.Contains(out, "started monitor/"+r.Key) || !strings.Contains(stderr, "its first judgement could not observe unknown_kid: no prometheus provider on this worker") {
		t.Fatalf("start: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, out, stderr := c.run(t, "monitor", "stop", r.Key, "--reason", "wrong provider"); code != 0 {
		t.Fatalf("stop: exit %d\n%s\n%s", code, out, stderr)
	}
}

// An operator starts the issuer's monitor twice (the second start starts nothing), reads its
// status while it revokes a subject whose revoked token is presented, finds that action with its
// reason in the monitor's audit, and stops it.
func TestStarter_MonitorStartIsIdempotent_StatusAndAuditShowTheAction_StopEndsIt(t *testing.T) {
	b := shared.Bed(t)
	r := provisionUnique(t, b, "climon")
	c := bedCLI(t, b)
	subject := r.Clients[0]
	if err := r.Activity.Tokens.Registry.RecordRevokedUse(context.Background(), registry.UseEvent{JTI: r.Name + "-stolen", Subject: subject, ClientID: subject,
		Issuer: r.Issuer, Address: "192.0.2.44"}); err != nil {
		t.Fatal(err)
	}
	start := []string{"monitor", "start", "--issuer", r.Issuer, "--transit-key", r.Key, "--interval", "10s", "--revoked-actions", "revoke", "--renewal-actions", "reissue", "--audience", "orders", "--reason", "SEC-42 watch the orders issuer"}
	code, out, stderr := c.run(t, start...)
	if code != 0 || !strings.Contains(out, "started monitor/"+r.Key) {
		t.Fatalf("start: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, out, stderr := c.run(t, start...); code != 0 || !strings.Contains(out, "already runs") {
		t.Fatalf("second start: exit %d\n%s\n%s", code, out, stderr)
	}
	want := []string{"revoked_presented", "expiring_unrenewed", "threshold 1", "open incidents: 1", subject, "192.0.2.44", "revoke (policy for revoked_presented", "done: revoked every token of subject " + subject}
	deadline := time.Now().Add(time.Minute)
	for {
		code, out, stderr = c.run(t, "monitor", "status", r.Key)
		missing := ""
		for _, w := range want {
			if !strings.Contains(out, w) {
				missing = w
				break
			}
		}
		if code == 0 && missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status lacks %q: exit %d\n%s\n%s", missing, code, out, stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if strings.Contains(out, "not observed") {
		t.Fatalf("a signal could not be read:\n%s", out)
	}
	t.Logf("starter monitor status:\n%s", out)
	code, out, stderr = c.run(t, "monitor", "audit", r.Key)
	if code != 0 || !strings.Contains(out, "monitor-start") || !strings.Contains(out, "SEC-42 watch the orders issuer") || strings.Count(out, " revoke ") != 1 || !strings.Contains(out, "every token of subject "+subject) || !strings.Contains(out, "→ done") {
		t.Fatalf("audit: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, out, stderr := c.run(t, "monitor", "stop", r.Key, "--reason", "test over"); code != 0 || !strings.Contains(out, "stopping") {
		t.Fatalf("stop: exit %d\n%s\n%s", code, out, stderr)
	}
	deadline = time.Now().Add(time.Minute)
	for {
		code, _, stderr = c.run(t, "monitor", "stop", r.Key, "--reason", "again")
		if code == 1 && strings.Contains(stderr, "no running monitor") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stop of a stopped monitor: exit %d\n%s", code, stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, out, stderr := c.run(t, "monitor", "status", r.Key); code != 0 || !strings.Contains(out, "(stopped: completed at ") || strings.Contains(out, "stopping") {
		t.Fatalf("status after the stop: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, out, _ := c.run(t, "monitor", "audit", r.Key); code != 0 || !strings.Contains(out, "monitor-stop") || !strings.Contains(out, "test over") {
		t.Fatalf("audit after the stop: exit %d\n%s", code, out)
	} else {
		t.Logf("starter monitor audit:\n%s", out)
	}
}
