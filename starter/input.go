package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/workflows"
)

// readSpec reads a YAML or JSON spec (- for stdin), at most spec.MaxSpecBytes of it, and lists
// every problem it has at once.
func readSpec(path string) (spec.DeploySpec, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return spec.DeploySpec{}, fmt.Errorf("read spec: %w", err)
		}
		defer f.Close()
		r = f
	}
	s, err := spec.Read(r)
	if v, ok := spec.AsValidation(err); ok {
		var sb strings.Builder
		fmt.Fprintf(&sb, "spec %s has %d problems:", path, len(v.Problems))
		for _, p := range v.Problems {
			fmt.Fprintf(&sb, "\n  %s", p)
		}
		return s, &codeError{exitInvalid, errors.New(sb.String())}
	}
	if errors.Is(err, spec.ErrTooLarge) {
		return s, &codeError{exitInvalid, fmt.Errorf("spec %s: %w", path, err)}
	}
	return s, err
}

// invalidFlags turns a workflow input's validation error into an exit-3 error that names the
// flags the operator sets rather than the input's fields (Clients[2] becomes --clients[2]).
// Other errors pass through.
func invalidFlags(err error, flags map[string]string) error {
	v, ok := spec.AsValidation(err)
	if !ok {
		return err
	}
	named := &spec.ValidationError{What: v.What}
	for _, p := range v.Problems {
		field, index, _ := strings.Cut(p.Field, "[")
		if index != "" {
			index = "[" + index
		}
		head, _, _ := strings.Cut(field, ".")
		if f, ok := flags[field]; ok {
			p.Field = f + index
		} else if f, ok := flags[head]; ok {
			p.Field = f
		}
		// One flag may set several fields (--max-ratio, --baseline): its problem is said once.
		if !slices.Contains(named.Problems, p) {
			named.Problems = append(named.Problems, p)
		}
	}
	return &codeError{exitInvalid, named}
}

// checkRequest checks an operator request before dialling, as the workflow's update validator
// will, so that bad input exits 3 and names the flag.
func checkRequest(req workflows.OperatorRequest) error {
	var p spec.Problems
	p.CheckText("--actor", req.Actor, spec.MaxActor, true)
	p.CheckText("--reason", req.Reason, spec.MaxText, false)
	if err := p.Err("operator request"); err != nil {
		return &codeError{exitInvalid, err}
	}
	return nil
}

// recoverInto turns a panic of a goroutine into an error on done: the Go runtime would exit 2,
// which is the documented "rolled back".
func recoverInto(done chan<- error) {
	if r := recover(); r != nil {
		done <- fmt.Errorf("internal error: %v", r)
	}
}

// outputFormat is the value of -o/--output: text or json, anything else refused as the command
// line is parsed (a pipeline's "--output JSON" must not silently get text).
type outputFormat string

func (o *outputFormat) String() string { return string(*o) }
func (o *outputFormat) Type() string   { return "text|json" }
func (o *outputFormat) Set(v string) error {
	if v != "text" && v != "json" {
		return fmt.Errorf("%q: allowed text or json", v)
	}
	*o = outputFormat(v)
	return nil
}

// outputFlag defines -o/--output into p, text by default.
func outputFlag(fs *pflag.FlagSet, p *string) {
	*p = "text"
	fs.VarP((*outputFormat)(p), "output", "o", "text or json")
}
