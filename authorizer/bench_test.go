package main

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
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

// The real bootstrap under the AWS Lambda Runtime Interface Emulator: warm invocation latency
// (HTTP to the emulator, its Runtime API round trip, the handler) beside the same handler in
// process behind aws-lambda-go's encoding, on the same token and event; and the cold start, from
// the emulator's start to the first answer, the function's init (discovery document, JWKS,
// first deny-list read) included. Run with -benchtime 1x: each iteration measures everything.
func BenchmarkAuthorizer_RIE(b *testing.B) {
	iss := newTestIssuer(b, true)
	m := iss.mint(b, "billing")[0]
	bootstrap := buildBootstrap(b)
	ev := event(b, "rest-request", m.Token, "a1b2c3d4e5")
	overrides := map[string]string{"ROLLGATE_DENYLIST_REFRESH": "1s"}
	const invocations, coldStarts = 1000, 5
	for b.Loop() {
		cold := make([]time.Duration, coldStarts)
		for n := range cold {
			u := iss.startUnderRIE(b, bootstrap, overrides)
			mustAllow(b, u.invokeRaw(b, ev))
			cold[n] = time.Since(u.fn.Started)
		}
		u := iss.startUnderRIE(b, bootstrap, overrides)
		viaRIE := timeInvocations(b, invocations, func() []byte { return u.invokeRaw(b, ev) })
		h := lambda.NewHandler(iss.startLambda(b, overrides).a.handleEvent)
		inProcess := timeInvocations(b, invocations, func() []byte {
			out, err := h.Invoke(context.Background(), ev)
			if err != nil {
				b.Fatal(err)
			}
			return out
		})
		c50, _ := percentiles(cold)
		r50, r99 := percentiles(viaRIE)
		p50, p99 := percentiles(inProcess)
		b.ReportMetric(µs(r50), "rie-p50-µs")
		b.ReportMetric(µs(r99), "rie-p99-µs")
		b.ReportMetric(µs(p50), "inproc-p50-µs")
		b.ReportMetric(µs(p99), "inproc-p99-µs")
		b.ReportMetric(float64(c50.Milliseconds()), "cold-p50-ms")
		b.Logf("cold starts %v", cold)
	}
}

// invokeRaw is one invocation through the emulator, its payload unparsed.
func (u *underRIE) invokeRaw(b testing.TB, event []byte) []byte {
	out, err := u.fn.Invoke(context.Background(), event)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// mustAllow checks a REST answer is an Allow policy, so a refusal never passes for a fast answer.
func mustAllow(b testing.TB, answer []byte) {
	if !bytes.Contains(answer, []byte(`"Effect":"Allow"`)) {
		b.Fatalf("not an Allow policy: %.300s", answer)
	}
}

// timeInvocations warms up, then times n invocations one after the other.
func timeInvocations(b testing.TB, n int, invoke func() []byte) []time.Duration {
	for range 20 {
		mustAllow(b, invoke())
	}
	ds := make([]time.Duration, n)
	for i := range ds {
		start := time.Now()
		answer := invoke()
		ds[i] = time.Since(start)
		mustAllow(b, answer)
	}
	return ds
}

func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)]
}

func µs(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
