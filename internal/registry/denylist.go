package registry

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/rollgate/rollgate/internal/tokens"
)

// DenyList is a verifier's in-memory copy of the revocations table. Refresh reads only what was
// written since the last refresh, so keeping up costs one small query per interval however many
// tokens are revoked. It implements tokens.RevocationChecker.
type DenyList struct {
	reg *Registry

	mu        sync.RWMutex
	jtis      map[string]int64  // jti → exp (epoch seconds), dropped once expired
	rules     map[ruleKey]int64 // scope and value → not_before (epoch nanoseconds)
	jtiMark   string
	ruleMark  string
	lastPrune time.Time
}

// ruleKey names a rule without building a string on the verify path.
type ruleKey struct{ scope, value string }

// NewDenyList makes an empty deny list over the registry; call Refresh (or Run) to fill it.
func NewDenyList(reg *Registry) *DenyList {
	return &DenyList{reg: reg, jtis: map[string]int64{}, rules: map[ruleKey]int64{}}
}

// Refresh reads the revocations written since the last refresh.
func (d *DenyList) Refresh(ctx context.Context) error {
	d.mu.RLock()
	jtiMark, ruleMark := d.jtiMark, d.ruleMark
	d.mu.RUnlock()
	jtis, err := d.reg.revocationsSince(ctx, "jti", jtiMark)
	if err != nil {
		return err
	}
	rules, err := d.reg.revocationsSince(ctx, "rule", ruleMark)
	if err != nil {
		return err
	}
	now := d.reg.now()
	d.mu.Lock()
	defer d.mu.Unlock()
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
