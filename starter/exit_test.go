package main

import (
	"errors"
	"testing"

	"github.com/spf13/cobra"
)

// Exit code 2 is "rolled back"; the Go runtime exits 2 on a panic, so a panic must never leave
// the starter as one.
func TestExecute_APanicIsAnInternalErrorThatExits1(t *testing.T) {
	root := &cobra.Command{Use: "starter", SilenceErrors: true, SilenceUsage: true}
	root.AddCommand(&cobra.Command{Use: "boom", RunE: func(*cobra.Command, []string) error {
		var m map[string]int
		m["x"] = 1 // assignment to a nil map panics
		return nil
	}})
	root.SetArgs([]string{"boom"})
	err := execute(root)
	if err == nil || exitCode(err) != exitError {
		t.Fatalf("a panic: %v, exit %d", err, exitCode(err))
	}
	done := make(chan error, 1)
	go func() {
		defer recoverInto(done)
		panic("in a goroutine")
	}()
	if err := <-done; err == nil || exitCode(err) != exitError {
		t.Fatalf("a goroutine's panic: %v", err)
	}
	for err, want := range map[error]int{nil: exitOK, errors.New("x"): exitError, &codeError{exitRolledBack, errors.New("rb")}: exitRolledBack, &codeError{exitInvalid, errors.New("bad")}: exitInvalid} {
		if got := exitCode(err); got != want {
			t.Errorf("exitCode(%v) = %d, want %d", err, got, want)
		}
	}
}
