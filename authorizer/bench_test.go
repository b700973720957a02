package main

import (
	"context"
	"testing"
)

// The authorizer's share of a warm Lambda invocation: decoding the event, verifying, the deny
// list check, the policy and the EMF line, beside the verifier alone on the same token.
func BenchmarkAuthorizer_RESTRequest(b *testing.B) {
	iss := newTestIssuer(b, true)
	m := iss.mint(b, "billing")[0]
	u := iss.startLambda(b, map[string]string{"ROLLGATE_DENYLIST_REFRESH": "1s"})
	ev := event(b, "rest-request", m.Token, "a1b2c3d4e5")
	ctx := context.Background()
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			if _, err := u.a.verifier.Verify(ctx, m.Token); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("event", func(b *testing.B) {
		for b.Loop() {
			if _, err := u.a.handleEvent(ctx, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
