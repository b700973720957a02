package main

import (
	"regexp"
	"sync"
)

// Label values that stand for many: metrics never get one series per value a client chose.
const (
	labelUnknown = "unknown" // a kid not in the key set; a release nobody named
	labelInvalid = "invalid" // a release value that is not a release id
	labelOther   = "other"   // a valid release beyond the first maxReleases seen
	reasonNone   = "none"    // the reason label of an accepted token
)

// Reasons the authorizer adds to those of internal/tokens.
const (
	reasonJWKSUnavailable = "jwks_unavailable"
	reasonDenyListStale   = "denylist_stale"
	reasonBadEvent        = "bad_event"
)

// releaseID is what a release id looks like: rollgate's deployment ids and semver-like names.
var releaseID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// maxReleases bounds the release label: a canary and its stable release are two values; a
// header an attacker controls (serve mode behind a proxy that passes it on) cannot add more
// series than this.
const maxReleases = 32

// releaseLabels turns a raw release value into a bounded label value.
type releaseLabels struct {
	mu   sync.RWMutex
	seen map[string]bool
}

func newReleaseLabels() *releaseLabels { return &releaseLabels{seen: map[string]bool{}} }

func (r *releaseLabels) label(raw string) string {
	switch {
	case raw == "":
		return labelUnknown
	case !releaseID.MatchString(raw):
		return labelInvalid
	}
	r.mu.RLock()
	ok := r.seen[raw]
	r.mu.RUnlock()
	if ok {
		return raw
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) >= maxReleases && !r.seen[raw] {
		return labelOther
	}
	r.seen[raw] = true
	return raw
}
