package activities

import (
	"context"

	"github.com/rollgate/rollgate/internal/keys"
)

// Keys manages the issuer's Vault transit key and its labels.
type Keys struct {
	Transit *keys.Transit
	Labels  *keys.LabelStore
}

// KeyRef names a transit key and its type.
type KeyRef struct {
	Name string
	Type keys.Type
}

// KeyState is a key's latest Vault version and its labels.
type KeyState struct {
	Latest int
	Labels keys.Labels
}

// SnapshotKey makes sure the key exists with the expected type, labels it current at its latest
// version if it has no labels yet, and returns its state.
func (a *Keys) SnapshotKey(ctx context.Context, ref KeyRef) (KeyState, error) {
	if err := keys.CheckName(ref.Name); err != nil { // checked here, not in the workflow, so recorded histories replay
		return KeyState{}, classify(err)
	}
	k, err := a.Transit.EnsureKey(ctx, ref.Name, ref.Type)
	if err != nil {
		return KeyState{}, classify(err)
	}
	l, err := a.Labels.Move(ctx, ref.Name, func(cur keys.Labels) (keys.Labels, error) {
		if cur.Current == 0 {
			return keys.Labels{Current: k.LatestVersion}, nil
		}
		return cur, nil
	})
	if err != nil {
		return KeyState{}, classify(err)
	}
	return KeyState{Latest: k.LatestVersion, Labels: l}, nil
}

// PrepareInput asks for the next key version.
type PrepareInput struct {
	Key            KeyRef
	ExpectedLatest int
}

// PrepareKey rotates the key once (a retry returns the version the first attempt made) and labels
// the new version pending. The private key stays in Vault.
func (a *Keys) PrepareKey(ctx context.Context, in PrepareInput) (int, error) {
	v, err := a.Transit.Rotate(ctx, in.Key.Name, in.ExpectedLatest)
	if err != nil {
		return 0, classify(err)
	}
	if _, err := a.Labels.Move(ctx, in.Key.Name, keys.SetPending(v)); err != nil {
		return 0, classify(err)
	}
	return v, nil
}

// LabelInput names a key version.
type LabelInput struct {
	Key     string
	Version int
}

// PromoteLabels makes the pending version current and the current one previous.
func (a *Keys) PromoteLabels(ctx context.Context, in LabelInput) (keys.Labels, error) {
	l, err := a.Labels.Move(ctx, in.Key, keys.Promote(in.Version))
	return l, classify(err)
}

// RestoreLabelsInput is a label set to put back.
type RestoreLabelsInput struct {
	Key    string
	Labels keys.Labels
}

// RestoreLabels puts the labels back as they were (a version is never deleted).
func (a *Keys) RestoreLabels(ctx context.Context, in RestoreLabelsInput) error {
	_, err := a.Labels.Move(ctx, in.Key, keys.Restore(in.Labels))
	return classify(err)
}

// RetireInput names the version whose previous label is dropped.
type RetireInput struct {
	Key     string
	Version int
}

// RetireLabel drops the previous label if it is still on the version, in one check-and-set write,
// so a rotation that moved the labels meanwhile is never overwritten. It returns the labels after.
func (a *Keys) RetireLabel(ctx context.Context, in RetireInput) (keys.Labels, error) {
	l, err := a.Labels.Move(ctx, in.Key, keys.Retire(in.Version))
	return l, classify(err)
}

// ReadLabels reads a key's labels.
func (a *Keys) ReadLabels(ctx context.Context, key string) (keys.Labels, error) {
	v, err := a.Labels.Read(ctx, key)
	return v.Labels, classify(err)
}
