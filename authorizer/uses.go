package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	xrate "golang.org/x/time/rate"

	"github.com/rollgate/rollgate/internal/registry"
)

// revokedUses records revoked and expired tokens still presented, for the token monitor (stolen
// tokens replayed; clients that do not renew): one write per token, kind and address per
// revokedUseInterval at most, and no more writes per second of each kind than the limit, so that
// replaying a revoked token cannot turn the authorizer into a write flood, and expired tokens
// presented (common, and anyone's to replay) cannot spend the budget of revoked ones. A failed or
// skipped write is only logged: the request is refused either way.
type revokedUses struct {
	reg      *registry.Registry
	issuer   string
	seen     *expirable.LRU[string, struct{}]
	limits   map[string]*xrate.Limiter // by kind of use
	timeout  time.Duration
	logger   *slog.Logger
	lastWarn time.Time
}

// revokedUseInterval is how often one token's uses are written at most; its uses in between are
// not counted (the monitor judges presence and addresses, not exact counts).
const revokedUseInterval = 10 * time.Second

func newRevokedUses(reg *registry.Registry, cfg Config, logger *slog.Logger) *revokedUses {
	if cfg.RevokedUsesTable == "" || cfg.RevokedUsesPerSecond == 0 {
		return nil
	}
	limits := map[string]*xrate.Limiter{}
	for _, kind := range []string{registry.UseRevoked, registry.UseExpired} {
		limits[kind] = xrate.NewLimiter(xrate.Limit(cfg.RevokedUsesPerSecond), max(1, int(cfg.RevokedUsesPerSecond)))
	}
	return &revokedUses{reg: reg, issuer: cfg.Issuer, seen: expirable.NewLRU[string, struct{}](10000, nil, revokedUseInterval),
		limits: limits, timeout: 500 * time.Millisecond, logger: logger}
}

// record writes one use of a revoked or expired token. The claims are the verified token's: a
// token is found revoked only after its signature and claims are checked, and expired only after
// its signature is.
func (u *revokedUses) record(ctx context.Context, kind string, p peeked, address string) {
	if u == nil || p.JTI == "" {
		return
	}
	key := kind + "\x00" + p.JTI + "\x00" + address
	if u.seen.Contains(key) || !u.limits[kind].Allow() {
		return
	}
	u.seen.Add(key, struct{}{})
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	err := u.reg.RecordRevokedUse(ctx, registry.UseEvent{Kind: kind, JTI: p.JTI, Subject: p.Sub, ClientID: p.ClientID, Issuer: u.issuer, Address: address})
	if err != nil && time.Since(u.lastWarn) > time.Minute {
		u.lastWarn = time.Now()
		u.logger.Warn("refused token use not recorded", "kind", kind, "error", err.Error())
	}
}
