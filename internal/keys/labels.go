package keys

import (
	"context"
	"errors"
	"fmt"
	"strings"

	vault "github.com/hashicorp/vault/api"
)

// Labels name the roles of a key's versions, after the AWS Secrets Manager staging-label model:
// Current signs, Pending is published but does not sign yet, Previous is still published so its
// tokens verify until they expire. Zero means no version holds the label. The label, not Vault's
// latest version, decides which version signs.
type Labels struct {
	Current  int `json:"current"`
	Pending  int `json:"pending,omitempty"`
	Previous int `json:"previous,omitempty"`
}

// Published lists the versions a JWKS must hold: previous, current and pending, without zeros.
func (l Labels) Published() []int {
	var out []int
	for _, v := range []int{l.Previous, l.Current, l.Pending} {
		if v > 0 {
			out = append(out, v)
		}
	}
	return out
}

// Validate rejects label sets that cannot be right: no current, or one version in two roles.
func (l Labels) Validate() error {
	if l.Current < 1 {
		return fmt.Errorf("labels %+v: no current version: %w", l, ErrInvalid)
	}
	if l.Pending != 0 && (l.Pending == l.Current || l.Pending == l.Previous) ||
		l.Previous != 0 && l.Previous == l.Current {
		return fmt.Errorf("labels %+v: one version holds two labels: %w", l, ErrInvalid)
	}
	return nil
}

// LabelStore keeps each key's labels as one Vault KV v2 record at
// <mount>/rollgate/keys/<key>/labels, written with check-and-set.
type LabelStore struct {
	Client *vault.Client
	Mount  string // KV v2 mount; default "secret"
}

// Versioned is a label record with the KV version it was read at (0: no record yet).
type Versioned struct {
	Labels
	KVVersion int
}

func (s *LabelStore) kv() *vault.KVv2 { return KV(s.Client, s.Mount) }

// KV is the KV v2 mount where rollgate keeps label records and delivered client tokens; an empty
// mount means Vault's dev default, "secret".
func KV(c *vault.Client, mount string) *vault.KVv2 {
	if mount == "" {
		mount = "secret"
	}
	return c.KVv2(strings.Trim(mount, "/"))
}

func labelPath(key string) string { return "rollgate/keys/" + key + "/labels" }

// Read returns the key's labels; a key without a record has zero labels and KVVersion 0.
func (s *LabelStore) Read(ctx context.Context, key string) (Versioned, error) {
	sec, err := s.kv().Get(ctx, labelPath(key))
	if errors.Is(err, vault.ErrSecretNotFound) {
		return Versioned{}, nil
	}
	if err != nil {
		return Versioned{}, fmt.Errorf("read labels of %s: %w", key, mapError(err))
	}
	var l Labels
	if err := remarshal(sec.Data, &l); err != nil {
		return Versioned{}, fmt.Errorf("labels of %s: %w", key, err)
	}
	v := Versioned{Labels: l}
	if sec.VersionMetadata != nil {
		v.KVVersion = sec.VersionMetadata.Version
	}
	return v, nil
}

// Move changes a key's labels with check-and-set. change receives the labels as read and returns
// the labels wanted; if they are already so, nothing is written (a retried move is a no-op). A
// concurrent writer makes the move fail with ErrConflict; it never overwrites.
func (s *LabelStore) Move(ctx context.Context, key string, change func(Labels) (Labels, error)) (Labels, error) {
	cur, err := s.Read(ctx, key)
	if err != nil {
		return Labels{}, err
	}
	next, err := change(cur.Labels)
	if err != nil {
		return cur.Labels, err
	}
	if next == cur.Labels && cur.KVVersion > 0 {
		return next, nil
	}
	if err := next.Validate(); err != nil {
		return cur.Labels, err
	}
	data := map[string]any{"current": next.Current, "pending": next.Pending, "previous": next.Previous}
	if _, err := s.kv().Put(ctx, labelPath(key), data, vault.WithCheckAndSet(cur.KVVersion)); err != nil {
		return cur.Labels, fmt.Errorf("move labels of %s from %+v to %+v: %w", key, cur.Labels, next, mapError(err))
	}
	return next, nil
}

// The usual moves, each a pure function for Move.

// SetPending labels version v pending (after a rotation).
func SetPending(v int) func(Labels) (Labels, error) {
	return func(l Labels) (Labels, error) {
		if l.Pending == v {
			return l, nil
		}
		if l.Current == v || l.Previous == v {
			return l, fmt.Errorf("v%d already holds a label in %+v: %w", v, l, ErrInvalid)
		}
		l.Pending = v
		return l, nil
	}
}

// Promote makes pending current and current previous; promoting to a version that is already
// current is a no-op.
func Promote(v int) func(Labels) (Labels, error) {
	return func(l Labels) (Labels, error) {
		if l.Current == v && l.Pending == 0 {
			return l, nil
		}
		if l.Pending != v {
			return l, fmt.Errorf("cannot promote v%d: pending is v%d: %w", v, l.Pending, ErrConflict)
		}
		return Labels{Current: v, Previous: l.Current}, nil
	}
}

// Restore puts back labels taken before a change (a rollback's compensation).
func Restore(snapshot Labels) func(Labels) (Labels, error) {
	return func(Labels) (Labels, error) { return snapshot, nil }
}

// Retire drops the previous label once its tokens have all expired.
func Retire(v int) func(Labels) (Labels, error) {
	return func(l Labels) (Labels, error) {
		if l.Previous == v {
			l.Previous = 0
		}
		return l, nil
	}
}
