package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/rollgate/rollgate/internal/registry"
)

// refreshTimeout bounds one deny-list refresh on the request path, so a DynamoDB that hangs
// delays a request by at most this much once per refresh interval.
const refreshTimeout = 2 * time.Second

// freshness keeps the deny list fresh and says when it is too old to trust. A deny list that
// has never loaded is too old: the authorizer never accepts tokens without having read the
// revocations at least once (unless it fails open).
type freshness struct {
	deny     *registry.DenyList
	refresh  time.Duration
	maxStale time.Duration
	logger   *slog.Logger
	started  time.Time

	mu          sync.Mutex
	refreshing  bool
	lastAttempt time.Time
	lastSuccess time.Time
	lastErr     error
	lastStale   time.Time // when staleness was last logged
}

func newFreshness(deny *registry.DenyList, cfg Config, logger *slog.Logger) *freshness {
	return &freshness{deny: deny, refresh: cfg.DenyListRefresh, maxStale: cfg.MaxStaleness, logger: logger, started: time.Now()}
}

// refreshIfDue refreshes on the request path when the last attempt is older than the refresh
// interval: a frozen Lambda sandbox runs no background goroutine, so this is the only way the
// list keeps up there. Only one request refreshes at a time; the others go on with the copy.
func (f *freshness) refreshIfDue(ctx context.Context) {
	f.mu.Lock()
	if f.refreshing || time.Since(f.lastAttempt) < f.refresh {
		f.mu.Unlock()
		return
	}
	f.refreshing = true
	f.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	f.record(f.deny.Refresh(rctx))
}

// run refreshes every interval until ctx ends (serve mode). It is DenyList.Run's loop, kept
// here because the staleness rule needs to know when a refresh last succeeded.
func (f *freshness) run(ctx context.Context) {
	t := time.NewTicker(f.refresh)
	defer t.Stop()
	for {
		f.refreshIfDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (f *freshness) record(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshing = false
	f.lastAttempt = time.Now()
	if err == nil {
		if f.lastErr != nil {
			f.logger.Info("deny list refreshed again")
		}
		f.lastSuccess, f.lastErr = f.lastAttempt, nil
		return
	}
	if f.lastErr == nil {
		f.logger.Warn("deny list refresh failed; keeping the last copy", "error", err)
	}
	f.lastErr = err
}

// stale reports whether the deny list is older than the maximum staleness, and logs that at
// most once per maximum-staleness period.
func (f *freshness) stale(failOpen bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	since := f.lastSuccess
	if since.IsZero() {
		since = f.started
	}
	age := time.Since(since)
	if !f.lastSuccess.IsZero() && age <= f.maxStale {
		return false
	}
	if time.Since(f.lastStale) >= f.maxStale {
		f.lastStale = time.Now()
		mode := "closed: every token is refused"
		if failOpen {
			mode = "open: tokens are accepted without the latest revocations"
		}
		f.logger.Error("deny list is stale; failing "+mode, "age", age.Round(time.Millisecond).String(),
			"max_staleness", f.maxStale.String(), "loaded", !f.lastSuccess.IsZero(), "error", errString(f.lastErr))
	}
	return true
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
