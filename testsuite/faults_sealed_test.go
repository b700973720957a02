package testsuite_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/workflows"
)

// sealedWindow is how long Vault stays sealed: an outage of an operator's unseal, shorter than
// one in production would be, to keep `make test` within CI's limit; it outlasts the SDK's and
// the Vault client's own retries, so the workflows' retries are what survive it.
const sealedWindow = 30 * time.Second

// A real Vault is sealed (`vault operator seal`) while one release has rotated its key and is not
// yet promoted, and while an operator rolls another back mid-bake; half a minute later it is
// unsealed with its unseal key. A sealed Vault answers 503 "Vault is sealed" to everything: the
// worker retries what met it, the rotating release waits for Vault and is promoted (a probe that
// cannot sign its token says nothing about the release's health), each release rotated its key
// exactly once, and the rollback's report shows compensations retried, none abandoned.
func TestFaults_VaultSealedDuringRotation_ReleasesConvergeAndCompensationsAreRetried(t *testing.T) {
	t.Parallel() // on a Vault and a task queue of its own
	began := time.Now()
	vault := startOwnVault(t)
	rolled := newFaultRelease(t, "sealrb", "v2", testsuite.WithVault(vault), testsuite.WithOwnTaskQueue())
	rotating := newFaultRelease(t, "sealrot", "v2", testsuite.WithVault(vault), testsuite.WithOwnTaskQueue())
	queue := workflows.TaskQueue + "-" + uniqueName("sealed")
	rolled.queue, rotating.queue = queue, queue
	w := faultWorker(t, "VAULT_ADDR="+vault.Addr, "VAULT_TOKEN="+vault.Token, "ROLLGATE_TASK_QUEUE="+queue)

	rolled.start(t, 10*time.Minute)
	rotating.start(t, faultBake)
	awaitFaultStatus(t, rolled, func(st workflows.Status) bool { return st.Phase == workflows.PhaseBaking })
	awaitFaultStatus(t, rotating, func(st workflows.Status) bool { return rotatedNotPromoted(st, rotating.latest) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := vault.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	unseal := time.NewTimer(sealedWindow)
	t.Log("Vault sealed")
	report := rollBackDuringTheFault(t, rolled, false)

	var rep *workflows.RollbackReport
	var res workflows.DeployResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		rep, res = report(), awaitResult(t, rotating)
	}()
	<-unseal.C
	uctx, ucancel := context.WithTimeout(context.Background(), time.Minute)
	defer ucancel()
	if err := vault.Unseal(uctx); err != nil {
		t.Fatal(err)
	}
	t.Log("Vault unsealed")
	<-done
	if t.Failed() {
		t.FailNow()
	}
	rolled.restored(t, rep)
	rolled.rotated(t, 1)
	rotating.converged(t, res, workflows.OutcomePromoted)
	attempts := retried(rep)
	if !anyRetried(attempts) {
		t.Fatalf("the rollback met the sealed Vault, yet its report shows no compensation retried: %v", attempts)
	}
	sealed := strings.Count(w.logs(), "Vault is sealed")
	if sealed == 0 {
		t.Fatalf("the worker never met the sealed Vault; its log:\n%s", w.logs())
	}
	t.Logf("Vault sealed for %s: the rotating release was %s; the rollback's compensation attempts %v; %d worker log lines met the seal; %s in all",
		sealedWindow, res.Outcome, attempts, sealed, time.Since(began).Round(time.Second))
}

// rotatedNotPromoted: the release rotated its key past latest (the new version labelled pending)
// and has not begun its promotion.
func rotatedNotPromoted(st workflows.Status, latest int) bool {
	switch st.Phase {
	case workflows.PhasePublishing, workflows.PhaseAuthorizer, workflows.PhaseCanary, workflows.PhaseBaking:
		return st.KeyLatest > latest
	}
	return false
}

// startOwnVault starts a Vault dev server for the test alone, stopped with it.
func startOwnVault(t *testing.T) *testsuite.VaultServer {
	t.Helper()
	shared.Bed(t) // builds the Vault CLI on a cold machine, and skips under -short
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	v, err := testsuite.StartVault(ctx, testsuite.VaultOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the test's Vault log:\n%s", v.Logs())
		}
		v.Stop()
	})
	return v
}
