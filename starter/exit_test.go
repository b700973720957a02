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

// A command line cobra refuses (an unknown command or flag, a value that does not parse, a
// missing argument or required flag) exits 3, refused as invalid, like the commands' own
// validation; an error of a command that ran keeps its code.
func TestExecute_ACommandLineCobraRefusesExits3(t *testing.T) {
	newRoot := func() *cobra.Command {
		root := &cobra.Command{Use: "starter", SilenceErrors: true, SilenceUsage: true}
		var n int
		run := &cobra.Command{Use: "run ID", Args: cobra.ExactArgs(1), RunE: func(*cobra.Command, []string) error {
			return errors.New("temporal unreachable")
		}}
		run.Flags().IntVar(&n, "runs", 1, "")
		run.Flags().String("reason", "", "")
		if err := run.MarkFlagRequired("reason"); err != nil {
			t.Fatal(err)
		}
		root.AddCommand(run)
		return root
	}
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"nope"}, exitInvalid},
		{[]string{"run", "a", "--reason", "r", "--bogus"}, exitInvalid},
		{[]string{"run", "a", "--reason", "r", "--runs", "x"}, exitInvalid},
		{[]string{"run", "--reason", "r"}, exitInvalid},
		{[]string{"run", "a"}, exitInvalid},
		{[]string{"run", "a", "--reason", "r"}, exitError},
	} {
		root := newRoot()
		root.SetArgs(c.args)
		if err := execute(root); exitCode(err) != c.want {
			t.Errorf("%v: %v, exit %d, want %d", c.args, err, exitCode(err), c.want)
		}
	}
}
