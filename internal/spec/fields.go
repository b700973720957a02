package spec

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rollgate/rollgate/internal/keys"
)

// FieldError is one problem with one field.
type FieldError struct {
	Field   string
	Problem string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Problem }

// ValidationError lists every problem of an input.
type ValidationError struct {
	What     string // what was refused, e.g. "key rotation"; "" is a deploy spec
	Problems []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	what := e.What
	if what == "" {
		what = "deploy spec"
	}
	return "invalid " + what + ": " + strings.Join(parts, "; ")
}

// AsValidation returns the validation error inside err, if any.
func AsValidation(err error) (*ValidationError, bool) {
	var v *ValidationError
	ok := errors.As(err, &v)
	return v, ok
}

// Problems collects what is wrong with an input, field by field, so that every problem is
// reported at once. The checks below are shared by the deploy spec and the other workflow inputs,
// so a field means the same thing wherever it appears.
type Problems struct{ list []FieldError }

// Add records one problem of field.
func (p *Problems) Add(field, format string, a ...any) {
	p.list = append(p.list, FieldError{field, fmt.Sprintf(format, a...)})
}

// Err is nil when nothing was added, else a *ValidationError of what.
func (p *Problems) Err(what string) error {
	if len(p.list) == 0 {
		return nil
	}
	return &ValidationError{What: what, Problems: slices.Clone(p.list)}
}

// ReleaseLabelPattern is the authorizer's release id (authorizer/labels.go, whose test holds the
// two the same): the only labels it counts a release's verifications under.
const ReleaseLabelPattern = `^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`

// IsReleaseLabel tells whether v is a release label the authorizer counts.
func IsReleaseLabel(v string) bool { return releaseLabel.MatchString(v) }

var (
	apiIDPattern   = regexp.MustCompile(`^[a-z0-9]{10}$`)
	stagePattern   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	namePattern    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`)
	varName        = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)
	varValue       = regexp.MustCompile(`^[A-Za-z0-9\-._~:/?#&=,]{0,512}$`)
	releaseLabel   = regexp.MustCompile(ReleaseLabelPattern)
	deploymentID   = regexp.MustCompile(`^[a-z0-9]{6,10}$`)
	authorizerID   = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)
	bucketPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	prefixPattern  = regexp.MustCompile(`^[A-Za-z0-9!_.*'()/-]{1,512}/$`)
	releaseIDShape = regexp.MustCompile(`^[A-Za-z0-9:.#_-]{1,128}$`)
)

// CheckName checks a name rollgate passes on (a service, a transit key, a client, a webhook).
func (p *Problems) CheckName(field, v, what string) {
	if !namePattern.MatchString(v) {
		p.Add(field, "%q: %s must be 1-128 letters, digits, '_', '.', '-', starting with a letter or digit", v, what)
	}
}

// CheckText checks free text: at most limit characters, no control characters but newline and
// tab (an escape sequence would rewrite an operator's terminal), and present when required.
func (p *Problems) CheckText(field, v string, limit int, required bool) {
	switch n := utf8.RuneCountInString(v); {
	case required && strings.TrimSpace(v) == "":
		p.Add(field, "required")
	case n > limit:
		p.Add(field, "%d characters: allowed at most %d", n, limit)
	case !utf8.ValidString(v) || strings.IndexFunc(v, isControl) >= 0:
		p.Add(field, "must be printable UTF-8 text (no control characters but newline and tab)")
	}
}

func isControl(r rune) bool { return r != '\n' && r != '\t' && unicode.IsControl(r) }

// CheckIssuer checks an OIDC issuer identifier: https (http only on a loopback host), a host,
// no user info, query or fragment. The error repeats the URL without its password.
func (p *Problems) CheckIssuer(field, v string) {
	u, err := url.Parse(v)
	switch {
	case err != nil:
		p.Add(field, "not a URL: must be an https URL (http only on loopback)")
	case !u.IsAbs() || u.Host == "" || u.Opaque != "":
		p.Add(field, "%q: must be an https URL (http only on loopback)", u.Redacted())
	case u.Scheme != "https" && !(u.Scheme == "http" && IsLoopback(u.Hostname())):
		p.Add(field, "%q: must be an https URL (http only on loopback: localhost, 127.0.0.0/8, ::1)", u.Redacted())
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(v, "#") || strings.HasSuffix(v, "?"):
		p.Add(field, "an issuer has no user info, query or fragment")
	}
}

// IsLoopback says whether host (as url.URL.Hostname returns it) names this machine: localhost
// or a loopback address. A name that merely starts with "127." is someone else's host.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}

// CheckKeyType checks a transit key type; it reports whether the type is usable.
func (p *Problems) CheckKeyType(field string, t keys.Type) bool {
	if t.Algorithms() == nil {
		p.Add(field, "%q: allowed rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ed25519", t)
		return false
	}
	return true
}

// CheckAlgorithm checks that a key of type t can sign with alg ("" is the type's default).
func (p *Problems) CheckAlgorithm(field string, t keys.Type, alg string) {
	if alg != "" && !slices.Contains(t.Algorithms(), alg) {
		p.Add(field, "%q cannot be signed with a %s key: allowed %v", alg, t, t.Algorithms())
	}
}

// CheckStage checks an API Gateway API id and stage name.
func (p *Problems) CheckStage(apiField, apiID, stageField, stage string) {
	if !apiIDPattern.MatchString(apiID) {
		p.Add(apiField, "%q: must be the 10-character API id", apiID)
	}
	if !stagePattern.MatchString(stage) {
		p.Add(stageField, "%q: allowed 1-128 of A-Za-z0-9_-", stage)
	}
}

// CheckClients checks the clients whose tokens are reissued: unique names, at most MaxClients.
func (p *Problems) CheckClients(field string, clients []string) {
	if len(clients) > MaxClients {
		p.Add(field, "%d clients: at most %d", len(clients), MaxClients)
		return
	}
	seen := make(map[string]bool, len(clients))
	for i, c := range clients {
		if !namePattern.MatchString(c) || seen[c] {
			p.Add(fmt.Sprintf("%s[%d]", field, i), "%q: must be a unique client name", c)
		}
		seen[c] = true
	}
}

// CheckAudiences checks token audiences: 1 to MaxAudiences non-empty values.
func (p *Problems) CheckAudiences(field string, auds []string) {
	switch {
	case len(auds) == 0:
		p.Add(field, "at least one audience is required")
		return
	case len(auds) > MaxAudiences:
		p.Add(field, "%d audiences: allowed 1 to %d", len(auds), MaxAudiences)
		return
	}
	for i, a := range auds {
		if strings.TrimSpace(a) == "" || utf8.RuneCountInString(a) > MaxActor || strings.IndexFunc(a, unicode.IsControl) >= 0 {
			p.Add(fmt.Sprintf("%s[%d]", field, i), "%q: an audience is 1-%d printable characters", a, MaxActor)
		}
	}
}

// CheckBucket checks an S3 bucket name (AWS's general purpose bucket naming rules).
func (p *Problems) CheckBucket(field, v string) {
	if !bucketPattern.MatchString(v) || strings.Contains(v, "..") {
		p.Add(field, "%q: must be an S3 bucket name: 3-63 of a-z0-9.- starting and ending with a letter or digit", v)
	}
}

// CheckPrefix checks an S3 key prefix under which .well-known/ is published ("" is the root).
func (p *Problems) CheckPrefix(field, v string) {
	if v != "" && (!prefixPattern.MatchString(v) || strings.HasPrefix(v, "/") || slices.Contains(strings.Split(v, "/"), "..")) {
		p.Add(field, "%q: must be a relative S3 key prefix ending with '/' (letters, digits, !_.*'()-/, no '..')", v)
	}
}

// CheckDuration checks that d lies in [lo, hi].
func (p *Problems) CheckDuration(field string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		p.Add(field, "%s: allowed %s to %s", d, lo, hi)
	}
}

// CheckOnRollback checks what happens to new-key tokens on rollback ("" is revoke).
func (p *Problems) CheckOnRollback(field, v string) {
	switch v {
	case "", "keep", "revoke":
	default:
		p.Add(field, "%q: allowed keep, revoke", v)
	}
}

// CheckWebhook checks a webhook reference: a name configured on the worker, never a URL. The
// value is not repeated: a webhook URL carries its secret, and the error lands in history.
func (p *Problems) CheckWebhook(field, v string) {
	if v != "" && !namePattern.MatchString(v) {
		p.Add(field, "must be the name of a webhook configured on the worker (ROLLGATE_WEBHOOKS), not a URL (the value is not repeated here: webhook URLs carry secrets)")
	}
}

// CheckReleaseID checks a release id from a stage's history ("" is the latest).
func (p *Problems) CheckReleaseID(field, v string) {
	if v != "" && !releaseIDShape.MatchString(v) {
		p.Add(field, "%q: must be a release id from the stage's history (see: starter history), or empty for the latest", v)
	}
}
