package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollgate/rollgate/internal/tokens"
)

// verification is one decision as the metrics see it; every value is already bounded.
type verification struct {
	Release string
	KID     string // a kid of the key set, or "unknown"
	Reason  string // "none" when accepted
}

func (v verification) outcome() string {
	if v.Reason == reasonNone {
		return "accepted"
	}
	return "rejected"
}

// recorder counts decisions: Prometheus in serve mode, CloudWatch EMF lines in Lambda.
type recorder interface {
	verified(v verification)
	// stale counts a decision taken while the deny list was too old to trust.
	stale(failOpen bool)
}

// promRecorder exports the verification counters, and the token lifecycle counters of
// internal/tokens so that `starter tokens --metrics` reads the authorizer like any verifier.
type promRecorder struct {
	issuer        string
	verifications *prometheus.CounterVec
	staleness     *prometheus.CounterVec
	lifecycle     *tokens.Metrics
}

func newPromRecorder(reg prometheus.Registerer, issuer string) *promRecorder {
	r := &promRecorder{
		issuer: issuer,
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rollgate", Subsystem: "authorizer", Name: "verifications_total",
			Help: "Token verifications at the gateway, by issuer, release, outcome, reason and kid (unknown: not in the key set).",
		}, []string{"issuer", "release", "outcome", "reason", "kid"}),
		staleness: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rollgate", Subsystem: "authorizer", Name: "denylist_stale_total",
			Help: "Decisions taken while the deny list was older than the maximum staleness, by issuer and mode (closed: refused; open: verified without it).",
		}, []string{"issuer", "mode"}),
		lifecycle: tokens.NewMetrics(reg),
	}
	reg.MustRegister(r.verifications, r.staleness)
	return r
}

func (r *promRecorder) verified(v verification) {
	r.verifications.WithLabelValues(r.issuer, v.Release, v.outcome(), v.Reason, v.KID).Inc()
	if v.Reason == reasonNone {
		r.lifecycle.Observe(v.KID, "")
	} else {
		r.lifecycle.Observe(v.KID, tokens.Reason(v.Reason))
	}
}

// forgetRelease drops the series of a release label given up for a newer release, so that the
// series stay as bounded as the labels.
func (r *promRecorder) forgetRelease(label string) {
	r.verifications.DeletePartialMatch(prometheus.Labels{"release": label})
}

func (r *promRecorder) stale(failOpen bool) {
	r.staleness.WithLabelValues(r.issuer, staleMode(failOpen)).Inc()
}

func staleMode(failOpen bool) string {
	if failOpen {
		return "open"
	}
	return "closed"
}
