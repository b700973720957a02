// Command starter is rollgate's CLI for pipelines and operators: it starts deployments and sends
// them rollback, promote, pause, resume and skip-step, and shows their status. Temporal connection
// settings come from the standard TEMPORAL_* variables.
//
// Exit codes: 0 promoted or done, 2 rolled back, 3 refused as invalid, 1 any other error.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/converter"
)

// Exit codes.
const (
	exitOK         = 0
	exitError      = 1
	exitRolledBack = 2
	exitInvalid    = 3
)

// codeError carries an exit code through cobra; the error it carries stays recognisable by type.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

func main() {
	root := &cobra.Command{
		Use:   "starter",
		Short: "Start and steer rollgate deployments",
		Long: `starter is rollgate's CLI for pipelines and operators: it starts deployments, key rotations and
revocations, sends operator requests, and shows status, history and audit trails.

Temporal is found through the standard variables (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
TEMPORAL_API_KEY, TEMPORAL_TLS_*, or a temporal.toml profile). When the worker encrypts payloads,
give the starter the same ROLLGATE_CODEC_* keys. Tracing turns on with OTEL_EXPORTER_OTLP_ENDPOINT.

Exit codes: 0 promoted or done, 2 rolled back, 3 refused as invalid, 1 any other error.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(deployCmd(), rollbackCmd(), operatorCmd("promote", "Promote now: skip the remaining canary steps"),
		operatorCmd("pause", "Pause before the next step (the current bake finishes)"), operatorCmd("resume", "Resume a paused deployment"),
		operatorCmd("skip-step", "End the current bake early and go on"), statusCmd(), watchCmd(), listCmd(), historyCmd(), revokeCmd(), rotateKeyCmd(), tokensCmd(), codecServerCmd(), auditCmd(), scheduleRotationCmd(), monitorCmd())
	err := execute(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starter:", errorMessage(err))
		os.Exit(exitCode(err))
	}
}

// errorMessage is the line an operator reads for err, with what to do when it says what.
func errorMessage(err error) string {
	msg := err.Error()
	if errors.Is(err, converter.ErrEncodingIsNotSupported) {
		// The default converter met a sealed payload: the worker encrypts and this process has no key.
		msg += " (the deployment's payloads are encrypted: set ROLLGATE_CODEC_KEY or ROLLGATE_CODEC_VAULT_SECRET as the worker has them)"
	}
	return msg
}

// execute runs the command line. A command line cobra refuses before any command runs (an
// unknown command or flag, a flag's value that does not parse, a missing argument or required
// flag) is refused as invalid, as the commands' own validation is: retrying it cannot help. A
// panic is an internal error: without this the Go runtime would exit 2, which a pipeline reads
// as "rolled back".
func execute(root *cobra.Command) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &codeError{exitError, fmt.Errorf("internal error: %v", r)}
		}
	}()
	ran := false
	markRun(root, &ran)
	err = root.Execute()
	var ce *codeError
	if err != nil && !ran && !errors.As(err, &ce) {
		err = &codeError{exitInvalid, err}
	}
	return err
}

// markRun sets *ran as any command of the tree starts to run, after cobra has parsed and
// checked its command line.
func markRun(c *cobra.Command, ran *bool) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			*ran = true
			return run(cmd, args)
		}
	}
	if run := c.Run; run != nil {
		c.Run = func(cmd *cobra.Command, args []string) {
			*ran = true
			run(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		markRun(sub, ran)
	}
}

// exitCode is the documented exit code of err: only a rolled-back outcome exits 2.
func exitCode(err error) int {
	var ce *codeError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ce):
		return ce.code
	}
	return exitError
}
