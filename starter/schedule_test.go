package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/testsuite"
)

// schedule-rotation creates a Temporal Schedule once, leaves it alone when run again with the
// same flags, updates it in place when they change; a triggered run rotates the key for real.
func TestStarter_ScheduleRotationIsIdempotentAndRotates(t *testing.T) {
	b := shared.Bed(t)
	ctx := context.Background()
	r, err := testsuite.ProvisionRelease(ctx, b, "clisched")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := bedCLI(t, b)
	args := func(every string) []string {
		return []string{"schedule-rotation", "--every", every, "--issuer", r.Issuer, "--transit-key", r.Key, "--jwks-bucket", r.Bucket,
			"--cache-ttl", "1s", "--clients", r.Clients[0], "--audience", "orders", "--proof", r.APIID + "/" + r.Stage, "--reason", "monthly (SEC-12)", "--output", "json"}
	}
	run := func(a ...string) (result string, every string) {
		t.Helper()
		code, out, stderr := c.run(t, a...)
		var res struct{ Result, Every string }
		if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
			t.Fatalf("%v: exit %d\n%s\n%s", a, code, out, stderr)
		}
		return res.Result, res.Every
	}
	if res, every := run(args("30d")...); res != "created" || every != "720h0m0s" {
		t.Fatalf("first run: %s every %s", res, every)
	}
	if res, _ := run(args("30d")...); res != "unchanged" {
		t.Fatalf("same flags again: %s", res)
	}
	if res, every := run(args("45d")...); res != "updated" || every != "1080h0m0s" {
		t.Fatalf("new interval: %s every %s", res, every)
	}
	for _, bad := range [][]string{
		{"schedule-rotation", "--every", "10m", "--issuer", r.Issuer, "--transit-key", r.Key, "--jwks-bucket", r.Bucket, "--reason", "x"},
		{"schedule-rotation", "--every", "monthly", "--issuer", r.Issuer, "--transit-key", r.Key, "--jwks-bucket", r.Bucket, "--reason", "x"},
		{"schedule-rotation", "--every", "30d", "--transit-key", r.Key, "--reason", "x"},
		{"schedule-rotation", "--every", "30d", "--issuer", r.Issuer, "--transit-key", r.Key, "--jwks-bucket", r.Bucket},
	} {
		if code, _, stderr := c.run(t, bad...); code != 3 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d\n%s", bad, code, stderr)
		}
	}

	// Trigger the schedule now: the rotation it starts promotes a new key version.
	before, err := r.Activity.Keys.Transit.ReadKey(ctx, r.Key)
	if err != nil {
		t.Fatal(err)
	}
	id := "rotate/" + r.Key
	if err := r.Temporal.ScheduleClient().GetHandle(ctx, id).Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	query := fmt.Sprintf("WorkflowType = 'KeyRotation' AND WorkflowId STARTS_WITH %q", id)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := r.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			t.Fatal(err)
		}
		if ex := resp.GetExecutions(); len(ex) == 1 && ex[0].GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			break
		} else if len(ex) == 1 && ex[0].GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			t.Fatalf("scheduled rotation ended %s", ex[0].GetStatus())
		}
		if time.Now().After(deadline) {
			t.Fatal("the triggered rotation did not finish")
		}
		time.Sleep(200 * time.Millisecond)
	}
	after, err := r.Activity.Keys.Transit.ReadKey(ctx, r.Key)
	if err != nil || after.LatestVersion != before.LatestVersion+1 {
		t.Fatalf("latest version %d after the scheduled rotation (before %d), %v", after.LatestVersion, before.LatestVersion, err)
	}
	if l, err := r.Activity.Keys.Labels.Read(ctx, r.Key); err != nil || l.Labels.Current != after.LatestVersion {
		t.Fatalf("labels after the scheduled rotation: %+v, %v", l, err)
	}

	if code, out, stderr := c.run(t, "schedule-rotation", "--delete", "--transit-key", r.Key); code != 0 || !strings.Contains(out, "deleted") {
		t.Fatalf("delete: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, _, stderr := c.run(t, "schedule-rotation", "--delete", "--transit-key", r.Key); code != 1 || !strings.Contains(stderr, "no rotation schedule") {
		t.Fatalf("delete again: exit %d\n%s", code, stderr)
	}
}
