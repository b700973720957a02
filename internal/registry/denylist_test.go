package registry_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/tokens"
)

// writerAt is a second view of reg's tables whose clock runs off by skew, as a worker on another
// machine would.
func writerAt(reg *registry.Registry, skew time.Duration) *registry.Registry {
	w := *reg
	w.Metrics = nil
	w.Now = func() time.Time { return time.Now().Add(skew) }
	return &w
}

func denied(d *registry.DenyList, jti string) bool {
	c := tokens.Claims{}
	c.ID = jti
	return d.Revoked(&c, "")
}

// An entry that becomes visible behind the high-water mark (a writer whose clock is behind, or
// index lag) is still applied by the next refresh.
func TestDenyList_EntryWrittenBehindTheMark_IsAppliedByTheNextRefresh(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	ahead, behind := writerAt(reg, 5*time.Second), writerAt(reg, -5*time.Second)
	deny := registry.NewDenyList(reg)

	if _, err := ahead.RevokeJTIs(ctx, []string{"jti-ahead"}, "test", 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := deny.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !denied(deny, "jti-ahead") {
		t.Fatal("the first entry was not applied")
	}
	// Written after the refresh moved the mark 5 s ahead, with a seq 10 s older than the mark.
	if _, err := behind.RevokeJTIs(ctx, []string{"jti-behind"}, "test", 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := behind.RevokeBefore(ctx, registry.BySubject, "subject-behind", time.Now(), "test"); err != nil {
		t.Fatal(err)
	}
	if err := deny.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !denied(deny, "jti-behind") {
		t.Fatal("a jti revoked behind the high-water mark was never applied: that token stays accepted")
	}
	c := tokens.Claims{}
	c.ID, c.Subject, c.IssuedAt = "other", "subject-behind", jwt.NewNumericDate(time.Now().Add(-time.Minute))
	if !deny.Revoked(&c, "") {
		t.Fatal("a subject rule written behind the high-water mark was never applied")
	}
	if denied(deny, "never-revoked") {
		t.Fatal("a jti nobody revoked is denied")
	}
}

// Two writers whose clocks are 8 s apart revoke concurrently while a verifier follows the table:
// once both are done, one more refresh has applied every revoked jti.
func TestDenyList_TwoSkewedWritersAndAFollowingVerifier_EveryRevokedJTIIsDenied(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	writers := []*registry.Registry{writerAt(reg, 4*time.Second), writerAt(reg, -4*time.Second)}
	deny := registry.NewDenyList(reg)

	const perWriter = 60
	follow, stop := context.WithCancel(ctx)
	followed := make(chan int)
	go func() { // the verifier refreshes as fast as it can while the writers write
		n := 0
		for follow.Err() == nil {
			if err := deny.Refresh(follow); err == nil {
				n++
			}
		}
		followed <- n
	}()
	var wg sync.WaitGroup
	errs := make(chan error, len(writers))
	for w, reg := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				jti := fmt.Sprintf("w%d-%d", w, i)
				if _, err := reg.RevokeJTIs(ctx, []string{jti}, "test", 0, nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	stop()
	refreshes := <-followed
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := deny.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	var missed []string
	for w := range writers {
		for i := range perWriter {
			if jti := fmt.Sprintf("w%d-%d", w, i); !denied(deny, jti) {
				missed = append(missed, jti)
			}
		}
	}
	if len(missed) > 0 {
		t.Fatalf("%d of %d revoked jtis are still accepted after %d concurrent refreshes and a final one: %v",
			len(missed), len(writers)*perWriter, refreshes, missed)
	}
	if refreshes < 2 {
		t.Fatalf("the verifier refreshed only %d times while the writers wrote: the test proves nothing", refreshes)
	}
}
