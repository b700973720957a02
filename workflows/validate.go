package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/gateway"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/spec"
)

// changeValidateEveryField: every workflow checks every field of its input before its first
// activity. Runs started before keep the checks they started with, so that an input they
// accepted is still accepted when their history replays.
const changeValidateEveryField = "validate-every-field"

// MaxJTIs bounds the jtis of one revocation: they travel in the workflow's input, and Temporal
// refuses payloads over 2 MB.
const MaxJTIs = 10000

// checkInput runs the input's checks, the current ones or, for a run started before they
// existed, the original ones; a problem fails the workflow as a non-retryable InvalidSpec.
func checkInput(ctx workflow.Context, current, original func() error) error {
	check := original
	if workflow.GetVersion(ctx, changeValidateEveryField, workflow.DefaultVersion, 1) == 1 {
		check = current
	}
	if err := check(); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidSpec, err)
	}
	return nil
}

// Validate checks every field of a rotation before anything changes; the starter calls it too.
func (in KeyRotationSpec) Validate() error {
	var p spec.Problems
	mints := len(in.Clients) > 0 || in.Probe != nil
	checkIssuer(&p, in.Issuer, mints, true)
	p.CheckClients("Clients", in.Clients)
	if len(in.Clients) > 0 {
		p.CheckDuration("TokenTTL", in.TokenTTL, time.Minute, spec.MaxTokenTTL)
	} else {
		p.CheckDuration("TokenTTL", in.TokenTTL, 0, spec.MaxTokenTTL)
	}
	checkProbe(&p, "Probe", in.Probe)
	p.CheckOnRollback("OnRollback", in.OnRollback)
	checkRequester(&p, in.Actor, in.Reason)
	p.CheckWebhook("Notify", in.Notify)
	return p.Err("key rotation")
}

// originalChecks are what a rotation checked before changeValidateEveryField. The key type is
// checked where the original code would have panicked on it: such a run never completed a task,
// so it takes the current path on its next attempt anyway.
func (in KeyRotationSpec) originalChecks() error {
	switch {
	case in.Issuer.Key.Name == "" || in.Issuer.URL == "" || in.Issuer.Bucket == "":
		return errors.New("key rotation needs the issuer: URL, transit key and JWKS bucket")
	case in.Actor == "" || in.Reason == "":
		return errors.New("key rotation needs an actor and a reason")
	case len(in.Clients) > 0 && (in.TokenTTL < time.Minute || in.TokenTTL > spec.MaxTokenTTL):
		return fmt.Errorf("token TTL %s: allowed 1m to %s", in.TokenTTL, spec.MaxTokenTTL)
	case in.OnRollback != "" && in.OnRollback != "keep" && in.OnRollback != "revoke":
		return fmt.Errorf("on-rollback %q: allowed keep, revoke", in.OnRollback)
	case in.Issuer.CacheTTL < 0 || in.Issuer.CacheTTL > spec.MaxCacheTTL:
		return fmt.Errorf("verifier cache TTL %s: allowed 0 to %s", in.Issuer.CacheTTL, spec.MaxCacheTTL)
	case in.Issuer.Algorithm == "" && in.Issuer.Key.Type.Algorithms() == nil:
		return fmt.Errorf("Issuer.Key.Type %q: allowed rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ed25519", in.Issuer.Key.Type)
	}
	return nil
}

// Validate checks every field of a rollback request; the starter calls it too.
func (in RollbackSpec) Validate() error {
	var p spec.Problems
	p.CheckStage("APIID", in.APIID, "Stage", in.Stage)
	p.CheckReleaseID("Release", in.Release)
	checkRequester(&p, in.Actor, in.Reason)
	p.CheckWebhook("Notify", in.Notify)
	return p.Err("rollback")
}

// originalChecks are what a rollback checked before changeValidateEveryField.
func (in RollbackSpec) originalChecks() error {
	switch {
	case in.APIID == "" || in.Stage == "":
		return errors.New("rollback needs the API id and stage")
	case in.Actor == "" || in.Reason == "":
		return errors.New("rollback needs an actor and a reason")
	}
	return nil
}

// Validate checks every field of a revocation; the starter calls it too.
func (in RevocationSpec) Validate() error {
	var p spec.Problems
	if n := in.Selectors(); n != 1 {
		p.Add("JTIs|Subject|KID|IssuedBefore", "%d selectors: name exactly one of jtis, subject, kid, issued-before", n)
	}
	checkIssuer(&p, in.Issuer, in.Proof != nil, false)
	checkJTIs(&p, in.JTIs)
	if in.Subject != "" {
		p.CheckText("Subject", in.Subject, spec.MaxActor, false)
	}
	if in.KID != "" {
		if key, _, err := keys.ParseKID(in.KID); err != nil || key != in.Issuer.Key.Name {
			p.Add("KID", "%q: must be a version of the issuer's key, %s-v<N>", in.KID, in.Issuer.Key.Name)
		}
	}
	checkProbe(&p, "Proof", in.Proof)
	checkFlush(&p, "Flush", in.Flush)
	p.CheckDuration("FlushAfter", in.FlushAfter, 0, MaxFlushAfter)
	checkRequester(&p, in.Actor, in.Reason)
	return p.Err("revocation")
}

// originalChecks are what a revocation checked before changeValidateEveryField.
func (in RevocationSpec) originalChecks() error {
	switch {
	case in.Selectors() != 1:
		return errors.New("name exactly one of: jtis, subject, kid, issued-before")
	case in.Actor == "" || in.Reason == "":
		return errors.New("revocation needs an actor and a reason")
	case in.Issuer.Key.Name == "" || in.Issuer.URL == "":
		return errors.New("revocation needs the issuer (URL and transit key)")
	}
	return nil
}

// checkIssuer checks an issuer as a workflow input names it. Audiences and a key type are
// needed only where tokens are minted, the bucket only where the JWKS is published; whatever is
// given is checked.
func checkIssuer(p *spec.Problems, iss activities.Issuer, mints, publishes bool) {
	p.CheckIssuer("Issuer.URL", iss.URL)
	p.CheckName("Issuer.Key.Name", iss.Key.Name, "a Vault transit key name")
	if (mints || publishes || iss.Key.Type != "") && p.CheckKeyType("Issuer.Key.Type", iss.Key.Type) {
		p.CheckAlgorithm("Issuer.Algorithm", iss.Key.Type, iss.Algorithm)
	}
	if mints || len(iss.Audiences) > 0 {
		p.CheckAudiences("Issuer.Audiences", iss.Audiences)
	}
	if publishes || iss.Bucket != "" {
		p.CheckBucket("Issuer.Bucket", iss.Bucket)
	}
	p.CheckPrefix("Issuer.Prefix", iss.Prefix)
	p.CheckDuration("Issuer.CacheTTL", iss.CacheTTL, 0, spec.MaxCacheTTL)
}

// checkProbe checks a stage where tokens are presented, when one is named.
func checkProbe(p *spec.Problems, field string, t *activities.Target) {
	if t == nil {
		return
	}
	if t.Describe().Kind == "" {
		p.Add(field+".Kind", "%q: allowed %s", t.Kind, gateway.Kinds())
	}
	p.CheckStage(field+".APIID", t.APIID, field+".Stage", t.Stage)
}

// MaxFlushAfter bounds the wait before a flush: the authorizer's deny-list refresh interval is at
// most 5 minutes.
const MaxFlushAfter = 5 * time.Minute

// checkFlush checks the stages whose authorizer caches are flushed, as stages are checked
// elsewhere, and their number.
func checkFlush(p *spec.Problems, field string, targets []activities.Target) {
	if len(targets) > MaxFlushStages {
		p.Add(field, "%d stages: at most %d", len(targets), MaxFlushStages)
		return
	}
	for i := range targets {
		checkProbe(p, fmt.Sprintf("%s[%d]", field, i), &targets[i])
	}
}

// checkRequester checks who asked and why: both required, both bounded free text.
func checkRequester(p *spec.Problems, actor, reason string) {
	p.CheckText("Actor", actor, spec.MaxActor, true)
	p.CheckText("Reason", reason, spec.MaxText, true)
}

// checkJTIs checks the token ids of a revocation: at most MaxJTIs, each 1-128 printable
// characters without spaces or commas (the CLI splits on commas).
func checkJTIs(p *spec.Problems, jtis []string) {
	if len(jtis) > MaxJTIs {
		p.Add("JTIs", "%d jtis: at most %d per revocation (revoke by subject, kid or time for more)", len(jtis), MaxJTIs)
		return
	}
	for i, j := range jtis {
		if j == "" || len(j) > 128 || strings.IndexFunc(j, func(r rune) bool { return r == ',' || !unicode.IsGraphic(r) || unicode.IsSpace(r) }) >= 0 {
			p.Add(fmt.Sprintf("JTIs[%d]", i), "%q: a jti is 1-128 printable characters without spaces or commas", j)
		}
	}
}
