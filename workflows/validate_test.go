package workflows_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/workflows"
)

// webhookSecret is the secret part of a webhook URL given where a webhook name belongs.
const webhookSecret = "T0/B0/xoxb-secret"

// invalid is one bad input and the field its failure must name.
type invalid[T any] struct {
	name   string
	change func(*T)
	field  string
}

// refusesEach runs the workflow once per bad input and checks that it fails as a non-retryable
// InvalidSpec naming the field, never with a panic, before any activity ran.
func refusesEach[T any](t *testing.T, wf any, valid func() T, cases []invalid[T], env func(*testing.T, *world) *testsuite.TestWorkflowEnvironment) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := &world{}
			e := env(t, w)
			in := valid()
			tc.change(&in)
			e.ExecuteWorkflow(wf, in)
			if !e.IsWorkflowCompleted() {
				t.Fatal("the workflow did not end")
			}
			err := e.GetWorkflowError()
			var app *temporal.ApplicationError
			var panicked *temporal.PanicError
			switch {
			case errors.As(err, &panicked):
				t.Fatalf("panicked: %v", panicked.Error())
			case !errors.As(err, &app) || app.Type() != workflows.ErrInvalidSpec || !app.NonRetryable():
				t.Fatalf("want a non-retryable %s, got %v", workflows.ErrInvalidSpec, err)
			case !strings.Contains(app.Message(), tc.field):
				t.Fatalf("the error does not name %s: %s", tc.field, app.Message())
			case strings.Contains(app.Message(), webhookSecret):
				t.Fatalf("the error repeats a webhook's secret into history: %s", app.Message())
			}
			if calls := w.called(); len(calls) != 0 {
				t.Fatalf("activities ran for an invalid input: %v", calls)
			}
		})
	}
}

func TestDeployment_RefusesEveryInvalidSpecBeforeAnyActivity(t *testing.T) {
	refusesEach(t, workflows.Deployment, testSpec, []invalid[spec.DeploySpec]{
		{"empty spec", func(s *spec.DeploySpec) { *s = spec.DeploySpec{} }, "service"},
		{"unknown key type", func(s *spec.DeploySpec) { s.Auth.KeyType = "rsa-1024" }, "auth.keyType"},
		{"http issuer on a non-loopback host", func(s *spec.DeploySpec) { s.Auth.Issuer = "http://127.attacker.example" }, "auth.issuer"},
		{"issuer with a fragment", func(s *spec.DeploySpec) { s.Auth.Issuer = "https://issuer.example.com#x" }, "auth.issuer"},
		{"step timeout shorter than the bake", func(s *spec.DeploySpec) { s.Canary.StepTimeout = spec.Duration(time.Minute) }, "canary.stepTimeout"},
		{"description too long", func(s *spec.DeploySpec) { s.Release.Description = strings.Repeat("x", 1025) }, "release.description"},
		{"token ttl zero", func(s *spec.DeploySpec) { s.Auth.TokenTTL = 0 }, "auth.tokenTtl"},
		{"client name", func(s *spec.DeploySpec) { s.Auth.Clients = []string{"billing", "bad name"} }, "auth.clients[1]"},
		{"bucket name", func(s *spec.DeploySpec) { s.Auth.JWKSBucket = "Bad_Bucket" }, "auth.jwksBucket"},
		{"bake too long", func(s *spec.DeploySpec) { s.Canary.Steps[0].Bake = spec.Duration(48 * time.Hour) }, "canary.steps[0].bake"},
		{"webhook URL instead of a name", func(s *spec.DeploySpec) { s.Notify.Webhook = "https://hooks.example.com/" + webhookSecret }, "notify.webhook"},
		{"release label the authorizer refuses", func(s *spec.DeploySpec) { s.Release.Variables[s.Gateway.ReleaseVariableName()] = "v2?x" }, "release.variables.rollgateRelease"},
	}, newEnv)
}

func rotationEnv(t *testing.T, w *world) *testsuite.TestWorkflowEnvironment {
	env := newEnv(t, w)
	env.RegisterWorkflow(workflows.KeyRotation)
	return env
}

func TestKeyRotation_RefusesEveryInvalidInputBeforeAnyActivity(t *testing.T) {
	refusesEach(t, workflows.KeyRotation, rotationSpec, []invalid[workflows.KeyRotationSpec]{
		{"empty input", func(in *workflows.KeyRotationSpec) { *in = workflows.KeyRotationSpec{} }, "Issuer.URL"},
		// It used to index the empty type's algorithms and panic: the rotation never ended.
		{"empty key type", func(in *workflows.KeyRotationSpec) { in.Issuer.Key.Type = "" }, "Issuer.Key.Type"},
		{"unknown key type", func(in *workflows.KeyRotationSpec) { in.Issuer.Key.Type = "aes256-gcm96" }, "Issuer.Key.Type"},
		{"algorithm of another key type", func(in *workflows.KeyRotationSpec) { in.Issuer.Algorithm = "ES256" }, "Issuer.Algorithm"},
		{"http issuer on a non-loopback host", func(in *workflows.KeyRotationSpec) { in.Issuer.URL = "http://127.attacker.example" }, "Issuer.URL"},
		{"transit key name", func(in *workflows.KeyRotationSpec) { in.Issuer.Key.Name = "../sys" }, "Issuer.Key.Name"},
		{"no bucket", func(in *workflows.KeyRotationSpec) { in.Issuer.Bucket = "" }, "Issuer.Bucket"},
		{"no audience for minted tokens", func(in *workflows.KeyRotationSpec) { in.Issuer.Audiences = nil }, "Issuer.Audiences"},
		{"negative cache ttl", func(in *workflows.KeyRotationSpec) { in.Issuer.CacheTTL = -time.Second }, "Issuer.CacheTTL"},
		{"cache ttl too long", func(in *workflows.KeyRotationSpec) { in.Issuer.CacheTTL = 48 * time.Hour }, "Issuer.CacheTTL"},
		{"token ttl zero with clients", func(in *workflows.KeyRotationSpec) { in.TokenTTL = 0 }, "TokenTTL"},
		{"token ttl too long without clients", func(in *workflows.KeyRotationSpec) { in.Clients, in.TokenTTL = nil, 48*time.Hour }, "TokenTTL"},
		{"client name", func(in *workflows.KeyRotationSpec) { in.Clients = []string{"bad name"} }, "Clients[0]"},
		{"duplicate client", func(in *workflows.KeyRotationSpec) { in.Clients = []string{"billing", "billing"} }, "Clients[1]"},
		{"probe stage", func(in *workflows.KeyRotationSpec) { in.Probe = &activities.Target{APIID: "x", Stage: "prod"} }, "Probe.APIID"},
		{"on rollback", func(in *workflows.KeyRotationSpec) { in.OnRollback = "shrug" }, "OnRollback"},
		{"no actor", func(in *workflows.KeyRotationSpec) { in.Actor = "" }, "Actor"},
		{"reason too long", func(in *workflows.KeyRotationSpec) { in.Reason = strings.Repeat("x", 1025) }, "Reason"},
		{"webhook URL instead of a name", func(in *workflows.KeyRotationSpec) { in.Notify = "https://hooks.example.com/" + webhookSecret }, "Notify"},
	}, rotationEnv)
}

func rollbackInput() workflows.RollbackSpec {
	return workflows.RollbackSpec{APIID: "abcdefghij", Stage: "prod", Release: "2026-12-01T10:00:00.000000000Z#0b6e", Actor: "bob", Reason: "regression"}
}

func TestRollback_RefusesEveryInvalidInputBeforeAnyActivity(t *testing.T) {
	refusesEach(t, workflows.Rollback, rollbackInput, []invalid[workflows.RollbackSpec]{
		{"empty input", func(in *workflows.RollbackSpec) { *in = workflows.RollbackSpec{} }, "APIID"},
		{"api id", func(in *workflows.RollbackSpec) { in.APIID = "not-an-api" }, "APIID"},
		{"stage", func(in *workflows.RollbackSpec) { in.Stage = "prod/../dev" }, "Stage"},
		{"release id", func(in *workflows.RollbackSpec) { in.Release = "latest release please" }, "Release"},
		{"no actor", func(in *workflows.RollbackSpec) { in.Actor = " " }, "Actor"},
		{"no reason", func(in *workflows.RollbackSpec) { in.Reason = "" }, "Reason"},
		{"escape sequence in the reason", func(in *workflows.RollbackSpec) { in.Reason = "\x1b]0;owned\x07" }, "Reason"},
		{"webhook URL instead of a name", func(in *workflows.RollbackSpec) { in.Notify = "https://hooks.example.com/" + webhookSecret }, "Notify"},
	}, newEnv)
}

func revocationInput() workflows.RevocationSpec {
	return workflows.RevocationSpec{Issuer: revIssuer, Subject: "billing", Actor: "sec", Reason: "laptop stolen", Proof: &activities.Target{APIID: "abcdefghij", Stage: "prod"}}
}

// revocationWorld wraps the revocation test environment; its activities do not record into w,
// so the check that none ran is the workflow's outcome (an invalid input fails before them).
func revocationWorld(t *testing.T, _ *world) *testsuite.TestWorkflowEnvironment {
	env, _ := revocationEnv(t)
	return env
}

func TestTokenRevocation_RefusesEveryInvalidInputBeforeAnyActivity(t *testing.T) {
	tooMany := make([]string, workflows.MaxJTIs+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("j%d", i)
	}
	refusesEach(t, workflows.TokenRevocation, revocationInput, []invalid[workflows.RevocationSpec]{
		{"empty input", func(in *workflows.RevocationSpec) { *in = workflows.RevocationSpec{} }, "JTIs|Subject|KID|IssuedBefore"},
		{"two selectors", func(in *workflows.RevocationSpec) { in.KID = "orders-issuer-v1" }, "JTIs|Subject|KID|IssuedBefore"},
		{"kid of another key", func(in *workflows.RevocationSpec) { in.Subject, in.KID = "", "billing-issuer-v3" }, "KID"},
		{"kid without a version", func(in *workflows.RevocationSpec) { in.Subject, in.KID = "", "orders-issuer" }, "KID"},
		{"jti with a comma", func(in *workflows.RevocationSpec) { in.Subject, in.JTIs = "", []string{"a,b"} }, "JTIs[0]"},
		{"too many jtis", func(in *workflows.RevocationSpec) { in.Subject, in.JTIs = "", tooMany }, "JTIs"},
		{"subject too long", func(in *workflows.RevocationSpec) { in.Subject = strings.Repeat("s", 300) }, "Subject"},
		{"http issuer on a non-loopback host", func(in *workflows.RevocationSpec) { in.Issuer.URL = "http://127.attacker.example" }, "Issuer.URL"},
		{"no key type for sample tokens", func(in *workflows.RevocationSpec) { in.Issuer.Key.Type = "" }, "Issuer.Key.Type"},
		{"proof stage", func(in *workflows.RevocationSpec) { in.Proof = &activities.Target{APIID: "abcdefghij", Stage: ""} }, "Proof.Stage"},
		{"flush stage", func(in *workflows.RevocationSpec) {
			in.Flush = []activities.Target{{APIID: "abcdefghij", Stage: "prod"}, {APIID: "x/y", Stage: "prod"}}
		}, "Flush[1].APIID"},
		{"flush kind", func(in *workflows.RevocationSpec) {
			in.Flush = []activities.Target{{Kind: "websocket", APIID: "abcdefghij", Stage: "prod"}}
		}, "Flush[0].Kind"},
		{"too many flush stages", func(in *workflows.RevocationSpec) {
			in.Flush = make([]activities.Target, workflows.MaxFlushStages+1)
		}, "Flush"},
		{"negative flush wait", func(in *workflows.RevocationSpec) { in.FlushAfter = -time.Second }, "FlushAfter"},
		{"flush wait over the longest refresh", func(in *workflows.RevocationSpec) { in.FlushAfter = time.Hour }, "FlushAfter"},
		{"no actor", func(in *workflows.RevocationSpec) { in.Actor = "" }, "Actor"},
		{"reason too long", func(in *workflows.RevocationSpec) { in.Reason = strings.Repeat("x", 1025) }, "Reason"},
	}, revocationWorld)
}

// A run started before every field was checked replays with the checks it started with: an input
// the current checks refuse (a long description, a client name with a space) but the run
// accepted must not turn its recorded history into a different path.
func TestReplay_ARunAcceptedUnderTheOriginalChecksStillReplays(t *testing.T) {
	for file, change := range map[string]func(map[string]any){
		"deployment-promoted.json": func(in map[string]any) {
			in["release"].(map[string]any)["description"] = strings.Repeat("v2 ", 1000)
			in["canary"].(map[string]any)["stepTimeout"] = "1m0s"
		},
		"key-rotation.json": func(in map[string]any) { in["Reason"] = strings.Repeat("quarterly ", 200) },
		"rollback-finished-release.json": func(in map[string]any) {
			in["Release"] = ""
			in["Stage"] = "prod"
			in["Actor"] = strings.Repeat("b", 300)
		},
		"token-revocation-subject.json": func(in map[string]any) { in["Subject"] = strings.Repeat("s", 300) },
	} {
		t.Run(file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			hist, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			payload := hist.Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
			var in map[string]any
			if err := json.Unmarshal(payload.Data, &in); err != nil {
				t.Fatal(err)
			}
			change(in)
			if payload.Data, err = json.Marshal(in); err != nil {
				t.Fatal(err)
			}
			r := worker.NewWorkflowReplayer()
			workflows.Register(r)
			if err := r.ReplayWorkflowHistory(nil, hist); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Operator requests are bounded like every input: the validator refuses them without writing
// history.
func TestDeployment_OperatorRequestsWithOverlongOrControlTextAreRefused(t *testing.T) {
	w := &world{block: true}
	env := newEnv(t, w)
	refusals, try := refusalsOf(env)
	env.RegisterDelayedCallback(func() {
		try(workflows.UpdateRollback, "long-reason", workflows.OperatorRequest{Actor: "a", Reason: strings.Repeat("x", 1025)})
		try(workflows.UpdatePause, "long-actor", workflows.OperatorRequest{Actor: strings.Repeat("a", 257), Reason: "x"})
		try(workflows.UpdatePromote, "escape", workflows.OperatorRequest{Actor: "a", Reason: "ok\x1b[2J"})
		try(workflows.UpdateRollback, "rollback-ok", workflows.OperatorRequest{Actor: "a", Reason: "done testing"})
	}, time.Second)
	env.ExecuteWorkflow(workflows.Deployment, testSpec())
	result(t, env)
	for id, says := range map[string]string{"long-reason": "reason: 1025 characters: allowed at most 1024",
		"long-actor": "actor: 257 characters: allowed at most 256", "escape": "reason: must be printable"} {
		if !strings.Contains(refusals[id], says) {
			t.Errorf("%s: refusal %q, want it to say %q", id, refusals[id], says)
		}
	}
	if _, ok := refusals["rollback-ok"]; ok {
		t.Fatalf("a valid rollback was refused: %s", refusals["rollback-ok"])
	}
}
