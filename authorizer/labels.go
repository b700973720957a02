package main

import (
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rollgate/rollgate/internal/tokens"
)

// Label values that stand for many: metrics never get one series per value a client chose.
const (
	labelUnknown = "unknown"               // a kid not in the key set; a release nobody named
	labelInvalid = "invalid"               // a release value that is not a release id
	labelOther   = "other"                 // a valid release beyond the maxReleases live ones
	reasonNone   = string(tokens.Accepted) // the reason label of an accepted token
)

// Reasons the authorizer adds to those of internal/tokens.
const (
	reasonJWKSUnavailable = string(tokens.JWKSUnavailable)
	reasonDenyListStale   = string(tokens.DenyListStale)
	reasonBadEvent        = string(tokens.BadEvent)
)

// releaseID is what a release id looks like: rollgate's deployment ids and semver-like names.
var releaseID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// maxReleases bounds the release label: a canary and its stable release are two values; a
// header an attacker controls (serve mode behind a proxy that passes it on) cannot add more
// series than this.
const maxReleases = 32

// releaseIdle is how long a release serves nothing before its label may go to a newer release.
const releaseIdle = time.Hour

// releaseLabels turns a raw release value into a bounded label value: at most maxReleases live
// at once, a release idle for releaseIdle making room for the next.
type releaseLabels struct {
	mu   sync.RWMutex
	seen map[string]*atomic.Int64 // last use, Unix seconds
	now  func() time.Time
	// forget drops the series of a label given up; nil when nothing keeps series.
	forget func(label string)
}

func newReleaseLabels() *releaseLabels {
	return &releaseLabels{seen: map[string]*atomic.Int64{}, now: time.Now}
}

func (r *releaseLabels) label(raw string) string {
	switch {
	case raw == "":
		return labelUnknown
	case !releaseID.MatchString(raw):
		return labelInvalid
	}
	// The use is stamped under the lock: dropIdle, which holds it to write, then either ran
	// before (the label is gone and is added again below) or sees it fresh, never drops a label
	// a request is about to count under.
	r.mu.RLock()
	last, ok := r.seen[raw]
	if ok {
		r.touch(last)
	}
	r.mu.RUnlock()
	if ok {
		return raw
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if last, ok := r.seen[raw]; ok {
		r.touch(last)
		return raw
	}
	if len(r.seen) >= maxReleases && r.dropIdle() == 0 {
		return labelOther
	}
	last = &atomic.Int64{}
	last.Store(r.now().Unix())
	r.seen[raw] = last
	return raw
}

// touch stamps a release's last use; a stamp already of this second is left alone, so that
// requests on many cores do not all write the same cache line.
func (r *releaseLabels) touch(last *atomic.Int64) {
	if now := r.now().Unix(); last.Load() != now {
		last.Store(now)
	}
}

// dropIdle gives up the labels of the releases idle for releaseIdle, and their series; the
// caller holds the write lock. It says how many it gave up.
func (r *releaseLabels) dropIdle() int {
	cutoff := r.now().Add(-releaseIdle).Unix()
	n := 0
	for label, last := range r.seen {
		if last.Load() < cutoff {
			delete(r.seen, label)
			if r.forget != nil {
				r.forget(label)
			}
			n++
		}
	}
	return n
}
