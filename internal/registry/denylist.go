package registry

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/rollgate/rollgate/internal/tokens"
)

// DefaultLookback is how far behind its high-water mark a DenyList re-reads the revocations
// table: it must be at least twice the clock skew between any writer and verifier plus the lag of
// the by-seq index (DynamoDB keeps global secondary indexes eventually consistent, usually well
// under a second). 30 s covers clocks within 10 s of each other and 10 s of index lag.
const DefaultLookback = 30 * time.Second

// DenyListIndex is the revocations table's index a DenyList reads, and DenyListActions every
// DynamoDB action it calls there: a verifier's role (deploy/authorizer.yaml) grants these on that
// index and nothing else, and the authorizer's tests hold the role and this list together.
const DenyListIndex = "by-seq"

// DenyListActions lists the IAM actions of the calls a DenyList makes (Refresh: Query).
var DenyListActions = []string{"dynamodb:Query"}

// DenyList is a verifier's in-memory copy of the revocations table. Refresh reads only what was
// written in the lookback window behind the last refresh, so keeping up costs one small query per
// interval however many tokens are revoked.
//
// The order entries are read in (seq) comes from the writers' clocks and is served by an
// eventually consistent index, so an entry can become visible after one with a higher seq has
// been read. Each refresh therefore re-reads from Lookback behind the earlier of its high-water
// mark and the start of the last successful refresh (by the verifier's own clock), and applies
// entries idempotently (a jti is a set member, a rule only moves forward). The guarantee: an entry
// is applied by the first successful refresh that starts after it became visible in the index,
// as long as 2 × clock skew + index lag ≤ Lookback. It implements tokens.RevocationChecker.
type DenyList struct {
	reg *Registry
	// Lookback is the re-read window (DefaultLookback when zero); set it before the first Refresh.
	Lookback time.Duration

	mu        sync.RWMutex
	jtis      map[string]int64  // jti → exp (epoch seconds), dropped once expired
	rules     map[ruleKey]int64 // scope and value → not_before (epoch nanoseconds)
	jtiMark   string            // highest seq read so far
	ruleMark  string
	lastOK    time.Time // start of the last successful refresh; zero before the first
	lastPrune time.Time
}

// ruleKey names a rule without building a string on the verify path.
type ruleKey struct{ scope, value string }

// NewDenyList makes an empty deny list over the registry; call Refresh (or Run) to fill it.
func NewDenyList(reg *Registry) *DenyList {
	return &DenyList{reg: reg, jtis: map[string]int64{}, rules: map[ruleKey]int64{}}
}

// Refresh reads the revocations written since the last refresh, and the lookback window behind it.
func (d *DenyList) Refresh(ctx context.Context) error {
	started := d.reg.now()
	d.mu.RLock()
	jtiFrom, ruleFrom := d.floor(d.jtiMark), d.floor(d.ruleMark)
	d.mu.RUnlock()
	jtis, err := d.reg.revocationsSince(ctx, "jti", jtiFrom)
	if err != nil {
		return err
	}
	rules, err := d.reg.revocationsSince(ctx, "rule", ruleFrom)
	if err != nil {
		return err
	}
	now := d.reg.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastOK = started
	for _, e := range jtis {
		d.jtis[e.jti] = e.exp
		d.jtiMark = max(d.jtiMark, e.seq)
	}
	for _, e := range rules {
		key := ruleKey{e.scope, e.value}
		d.rules[key] = max(d.rules[key], e.notBefore)
		d.ruleMark = max(d.ruleMark, e.seq)
	}
	if now.Sub(d.lastPrune) > time.Minute { // expired tokens fail verification anyway
		for jti, exp := range d.jtis {
			if exp < now.Add(-time.Hour).Unix() {
				delete(d.jtis, jti)
			}
		}
		d.lastPrune = now
	}
	return nil
}

// floor is the seq a refresh reads after: Lookback behind the earlier of the high-water mark and
// the last successful refresh, so neither a writer's clock running ahead (a high mark) nor the
// verifier's own (a late lastOK) alone can skip an entry. Before the first refresh it is "",
// which reads everything.
func (d *DenyList) floor(mark string) string {
	if mark == "" || d.lastOK.IsZero() {
		return ""
	}
	high, err := seqTime(mark)
	if err != nil {
		return ""
	}
	from := min(high, d.lastOK.UnixNano())
	lookback := d.Lookback
	if lookback <= 0 {
		lookback = DefaultLookback
	}
	return seqFloor(from - lookback.Nanoseconds())
}

// Run refreshes every interval until ctx ends, logging failures and keeping the last good copy.
func (d *DenyList) Run(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := d.Refresh(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("deny list refresh failed; keeping the last copy", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Revoked reports whether a verified token is on the deny list or issued before a rule of its
// subject, kid or issuer.
func (d *DenyList) Revoked(c *tokens.Claims, kid string) bool {
	var iat int64
	if c.IssuedAt != nil {
		iat = c.IssuedAt.UnixNano()
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if _, ok := d.jtis[c.ID]; ok {
		return true
	}
	if len(d.rules) == 0 {
		return false
	}
	for _, key := range [...]ruleKey{{string(BySubject), c.Subject}, {string(ByKID), kid}, {string(ByIssuer), c.Issuer}} {
		if nb, ok := d.rules[key]; ok && iat < nb {
			return true
		}
	}
	return false
}

// Size is how many jtis and rules the list holds.
func (d *DenyList) Size() (jtis, rules int) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.jtis), len(d.rules)
}
