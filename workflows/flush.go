package workflows

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/gateway"
)

// changeFlushAfterRevocation: a revocation, a key retirement and a rollback that revokes tokens
// flush the authorizer caches of the stages that accept the tokens, so that an Allow API Gateway
// cached before (for up to authorizerResultTtlInSeconds, 3600 s at most) cannot outlive the
// revocation. Runs started before flush nothing.
const changeFlushAfterRevocation = "flush-after-revocation"

// MaxFlushStages bounds the stages one workflow flushes: they travel in its input and history.
const MaxFlushStages = 100

// denyListSettle is how long after a revocation is written a rollback waits before it flushes:
// the authorizer's default deny-list refresh interval (ROLLGATE_DENYLIST_REFRESH, 1 s) plus one
// refresh. An authorizer asked again sooner may still hold the old list, and its Allow would be
// cached again for the whole TTL.
const denyListSettle = 2 * time.Second

// stageSet is targets without duplicates, in a fixed order, so that the flush's input is the
// same on every replay whatever order the stages were gathered in.
func stageSet(targets ...activities.Target) []activities.Target {
	out := make([]activities.Target, 0, len(targets))
	for _, t := range targets {
		if t.Kind == gateway.KindREST {
			t.Kind = "" // "" and "rest" are the same stage; recorded payloads name REST stages so
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b activities.Target) int {
		return cmp.Or(cmp.Compare(a.APIID, b.APIID), cmp.Compare(a.Stage, b.Stage), cmp.Compare(a.Kind, b.Kind))
	})
	return out
}

// flushAfter waits until settle has passed since revoked (authorizers have seen the revocation),
// then flushes the stages' authorizer caches.
func flushAfter(ctx workflow.Context, revoked time.Time, settle time.Duration, targets []activities.Target) (activities.FlushResult, error) {
	if wait := revoked.Add(settle).Sub(workflow.Now(ctx)); wait > 0 {
		if err := workflow.Sleep(ctx, wait); err != nil {
			return activities.FlushResult{}, err
		}
	}
	var res activities.FlushResult
	err := workflow.ExecuteActivity(rollbackControlPlane(short(ctx)), gw.FlushAuthorizerCaches, activities.FlushInput{Targets: targets}).Get(ctx, &res)
	return res, err
}

// stageNames lists stages as operators name them: "<apiId>/<stage>", an HTTP API's with its kind.
func stageNames(targets []activities.Target) []string {
	out := make([]string, len(targets))
	for i, t := range targets {
		out[i] = t.APIID + "/" + t.Stage
		if t.Kind != "" && t.Kind != gateway.KindREST {
			out[i] = fmt.Sprintf("%s (%s)", out[i], t.Kind)
		}
	}
	return out
}
