package tokens

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the token lifecycle counters, per kid. The worker exports them on /metrics.
type Metrics struct {
	Issued     *prometheus.CounterVec // kid
	Superseded *prometheus.CounterVec // kid
	Revoked    *prometheus.CounterVec // kid ("" for rules that name no kid), how: jti|subject|kid|issuer
	Expired    *prometheus.CounterVec // kid
	Verified   *prometheus.CounterVec // kid
	Rejected   *prometheus.CounterVec // kid, reason
}

// NewMetrics registers the counters with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "rollgate", Subsystem: "tokens", Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	return &Metrics{
		Issued:     counter("issued_total", "Tokens issued, by signing kid.", "kid"),
		Superseded: counter("superseded_total", "Tokens replaced by a reissued one, by kid.", "kid"),
		Revoked:    counter("revoked_total", "Revocations recorded, by kid and by how they were revoked.", "kid", "how"),
		Expired:    counter("expired_total", "Active tokens found past their expiry by a registry sweep, by kid.", "kid"),
		Verified:   counter("verified_total", "Tokens a verifier accepted, by kid.", "kid"),
		Rejected:   counter("rejected_total", "Tokens a verifier rejected, by kid and reason.", "kid", "reason"),
	}
}

// Observe counts a verification outcome; pass it as VerifierOptions.Observe, which hands it only
// kids of the key set or UnknownKIDLabel. Any other caller must bound kid the same way: every
// distinct value is a series kept for the life of the process.
func (m *Metrics) Observe(kid string, reason Reason) {
	if reason == "" {
		m.Verified.WithLabelValues(kid).Inc()
		return
	}
	m.Rejected.WithLabelValues(kid, string(reason)).Inc()
}
