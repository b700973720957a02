package testsuite_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/testsuite/gatewayemu"
	"github.com/rollgate/rollgate/workflows"
)

// dependencyFault is a dependency of the worker failing for a while.
type dependencyFault struct {
	name   string
	window time.Duration
	on     func(t *testing.T, vault, dynamodb *faultProxy)
	off    func(t *testing.T, vault, dynamodb *faultProxy)
	// retried: every call the fault touches fails, so the rollback that meets it must say that
	// some compensation took more than one attempt. A fault on a share of calls is mostly absorbed
	// by the SDK's own retries.
	retried bool
	// fromHistory: the release rolled back during the fault was promoted before it, and is rolled
	// back from the release history (the Rollback workflow), whose compensations revoke and
	// reissue tokens in the registry; otherwise an operator rolls it back mid-bake.
	fromHistory bool
	// mayRollBack: the release started during the fault may be rolled back rather than promoted.
	// Its health probes mint tokens in the registry; a release whose health cannot be measured is
	// rolled back, which is safe, as long as the rollback is verified.
	mayRollBack bool
	// shared: the fault is injected in a server every test uses (the gateway emulator), so the
	// case runs alone, not beside the package's parallel tests; the others fail a proxy of
	// their own, and run in parallel on task queues of their own.
	shared bool
}

// controlPlaneFaults are the gateway operations of a release and its rollback, each failing with
// a status API Gateway answers when it is in trouble or throttles.
var controlPlaneFaults = map[string]int{
	"GetStage": http.StatusServiceUnavailable, "UpdateStage": http.StatusTooManyRequests, "CreateDeployment": http.StatusInternalServerError,
	"GetDeployment": http.StatusBadGateway, "GetDeployments": http.StatusTooManyRequests, "GetAuthorizer": http.StatusServiceUnavailable,
	"UpdateAuthorizer": http.StatusTooManyRequests, "FlushStageAuthorizersCache": http.StatusInternalServerError,
}

// The windows are the issue's: Vault and DynamoDB out for half a minute, the gateway failing a
// fifth of its calls for a minute; each outlasts the SDK's own retries, so the workflows' retries
// are what survive it. The two behind proxies of their own run in parallel with the package's
// other parallel tests, so only the gateway's minute adds to `make test`.
var dependencyFaults = []dependencyFault{
	{
		name: "vault-503", window: 30 * time.Second, retried: true,
		on:  func(_ *testing.T, v, _ *faultProxy) { v.answer(http.StatusServiceUnavailable) },
		off: func(_ *testing.T, v, _ *faultProxy) { v.answer(0) },
	},
	{
		name: "gateway-5xx-429-at-20pct", window: time.Minute, shared: true,
		on: func(t *testing.T, _, _ *faultProxy) {
			for op, status := range controlPlaneFaults {
				shared.Bed(t).Gateway.InjectFault(op, gatewayemu.Fault{Status: status, Ratio: 0.2})
			}
		},
		off: func(t *testing.T, _, _ *faultProxy) { shared.Bed(t).Gateway.ClearFaults() },
	},
	{
		// A rollback during a bake has no compensation that needs DynamoDB (tokens are reissued
		// only at promotion): the rollback of a promoted release has.
		name: "dynamodb-unreachable", window: 30 * time.Second, retried: true, fromHistory: true, mayRollBack: true,
		on:  func(_ *testing.T, _, d *faultProxy) { d.refuse() },
		off: func(t *testing.T, _, d *faultProxy) { d.accept(t) },
	},
}

// A dependency fails while two releases run on the worker program: one release rotates its key
// during the fault and is promoted after it; the other is rolled back by an operator during the
// fault (mid-bake, or after its promotion from the release history), every compensation retried
// until it succeeded (none abandoned), the rollback verified, and its report says which
// compensations took more than one attempt.
func TestFaults_DependencyFailsForAWhile_ReleasesConvergeAndCompensationsAreRetried(t *testing.T) {
	for _, fault := range dependencyFaults {
		if !fault.shared {
			t.Run(fault.name, func(t *testing.T) { t.Parallel(); dependencyFailsForAWhile(t, fault) })
		}
	}
}

// The gateway's control plane fails a fifth of its calls for a minute: alone, since every test
// shares the emulator.
func TestFaults_GatewayFailsForAMinute_ReleasesConvergeAndCompensationsAreRetried(t *testing.T) {
	for _, fault := range dependencyFaults {
		if fault.shared {
			t.Run(fault.name, func(t *testing.T) { dependencyFailsForAWhile(t, fault) })
		}
	}
}

func dependencyFailsForAWhile(t *testing.T, fault dependencyFault) {
	bed := shared.Bed(t)
	vault, dynamodb := startFaultProxy(t, bed.Vault.Addr), startFaultProxy(t, bed.DynamoDB.Endpoint)
	t.Cleanup(bed.Gateway.ClearFaults)
	var options []testsuite.ReleaseOption
	queue := workflows.TaskQueue
	if !fault.shared {
		options, queue = []testsuite.ReleaseOption{testsuite.WithOwnTaskQueue()}, workflows.TaskQueue+"-"+uniqueName("fault")
	}
	rolled, promoted := newFaultRelease(t, "faultrb", "v2", options...), newFaultRelease(t, "faultpr", "v2", options...)
	rolled.queue, promoted.queue = queue, queue
	faultWorker(t, "VAULT_ADDR="+vault.URL, "AWS_ENDPOINT_URL_DYNAMODB="+dynamodb.URL, "ROLLGATE_TASK_QUEUE="+queue)

	if fault.fromHistory {
		rolled.start(t, faultBake)
		rolled.converged(t, awaitResult(t, rolled), workflows.OutcomePromoted)
	} else {
		rolled.start(t, 10*time.Minute)
		awaitFaultStatus(t, rolled, func(st workflows.Status) bool { return st.Phase == workflows.PhaseBaking })
	}
	fault.on(t, vault, dynamodb)
	window := time.NewTimer(fault.window)
	promoted.start(t, faultBake)
	report := rollBackDuringTheFault(t, rolled, fault.fromHistory)

	var rep *workflows.RollbackReport
	var resPromoted workflows.DeployResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		rep, resPromoted = report(), awaitResult(t, promoted)
	}()
	<-window.C
	fault.off(t, vault, dynamodb)
	<-done
	if t.Failed() {
		t.FailNow()
	}
	rolled.restored(t, rep)
	rolled.rotated(t, 1)
	if fault.mayRollBack {
		promoted.converged(t, resPromoted, workflows.OutcomePromoted, workflows.OutcomeRolledBack)
	} else {
		promoted.converged(t, resPromoted, workflows.OutcomePromoted)
	}
	attempts := retried(rep)
	if fault.retried && !anyRetried(attempts) {
		t.Fatalf("the rollback met the fault, yet its report shows no compensation retried: %v", attempts)
	}
	if fault.name == "vault-503" && vault.answered() == 0 {
		t.Fatal("no request met Vault's 503")
	}
	t.Logf("%s for %s: the release started during it was %s; the rollback's compensation attempts %v", fault.name, fault.window, resPromoted.Outcome, attempts)
}

// rollBackDuringTheFault asks for the release's rollback as an operator: of the running release
// (the rollback update), or of the finished one from the release history (the Rollback workflow).
// It returns once the request is accepted, with a function that waits for the report.
func rollBackDuringTheFault(t *testing.T, fr *faultRelease, fromHistory bool) func() *workflows.RollbackReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := workflows.OperatorRequest{Actor: "oncall", Reason: "fault drill"}
	if !fromHistory {
		if _, err := fr.temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: fr.run.GetID(), RunID: fr.run.GetRunID(), UpdateName: workflows.UpdateRollback,
			WaitForStage: client.WorkflowUpdateStageAccepted, Args: []any{req},
		}); err != nil {
			t.Fatalf("rollback request: %v", err)
		}
		return func() *workflows.RollbackReport {
			res := awaitResult(t, fr)
			if res.Outcome != workflows.OutcomeRolledBack {
				t.Errorf("%s: outcome %s after the rollback request", fr.r.Name, res.Outcome)
			}
			return res.Rollback
		}
	}
	run, err := fr.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.RollbackWorkflowID(fr.r.APIID, fr.r.Stage), TaskQueue: fr.queue,
	}, workflows.Rollback, workflows.RollbackSpec{APIID: fr.r.APIID, Stage: fr.r.Stage, Actor: req.Actor, Reason: req.Reason})
	if err != nil {
		t.Fatalf("rollback from the history: %v", err)
	}
	return func() *workflows.RollbackReport {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var rep workflows.RollbackReport
		if err := run.Get(ctx, &rep); err != nil {
			t.Errorf("%s: the rollback from the history did not end: %v", fr.r.Name, err)
		}
		return &rep
	}
}

func anyRetried(attempts map[string]int) bool {
	for _, n := range attempts {
		if n > 1 {
			return true
		}
	}
	return false
}
