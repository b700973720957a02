package spec_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rollgate/rollgate/internal/spec"
)

func exampleSpec(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../starter/testdata/release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func problemsOf(t *testing.T, err error) []spec.FieldError {
	t.Helper()
	v, ok := spec.AsValidation(err)
	if !ok {
		t.Fatalf("not a validation error: %v", err)
	}
	return v.Problems
}

func hasProblem(ps []spec.FieldError, field, says string) bool {
	for _, p := range ps {
		if p.Field == field && strings.Contains(p.Problem, says) {
			return true
		}
	}
	return false
}

func TestParse_TheExampleSpecIsValid(t *testing.T) {
	s, err := spec.Parse([]byte(exampleSpec(t)))
	if err != nil {
		t.Fatal(err)
	}
	if s.Gateway.APIID != "a1b2c3d4e5" || len(s.Canary.Steps) != 3 {
		t.Fatalf("%+v", s)
	}
}

func TestParse_ListsEveryUnknownFieldWithEveryOtherProblem(t *testing.T) {
	raw := strings.Replace(exampleSpec(t), "service: orders", "service: ''\ncanaryy: {}", 1)
	raw = strings.Replace(raw, "  tokenTtl: 1h", "  tokenTTL: 1h\n  tokenTtl: 1h\n  colour: blue", 1)
	raw = strings.Replace(raw, "    - {weight: 5, bake: 10m}", "    - {weight: 5, bake: 10m, wait: 1m}", 1)
	raw = strings.Replace(raw, "  minProbes: 30", "  minProbes: 0", 1)
	_, err := spec.Parse([]byte(raw))
	ps := problemsOf(t, err)
	for _, want := range []struct{ field, says string }{
		{"canaryy", "unknown field"},
		{"auth.tokenTTL", "unknown field"}, // encoding/json would take it case-insensitively
		{"auth.colour", "unknown field"},
		{"canary.steps[0].wait", "unknown field (allowed: bake, weight)"},
		{"service", "letters"},
		{"canary.minProbes", "allowed 1 to 10000"},
	} {
		if !hasProblem(ps, want.field, want.says) {
			t.Errorf("no %s %q in %v", want.field, want.says, ps)
		}
	}
}

func TestParse_RefusesADuplicateKey(t *testing.T) {
	for name, raw := range map[string]string{
		"yaml top level": strings.Replace(exampleSpec(t), "service: orders", "service: orders\nservice: billing", 1),
		"yaml nested":    strings.Replace(exampleSpec(t), "  stage: prod", "  stage: prod\n  stage: dev", 1),
		"json":           `{"service": "orders", "service": "billing"}`,
	} {
		_, err := spec.Parse([]byte(raw))
		if ps := problemsOf(t, err); !hasProblem(ps, "spec", "key appears twice") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParse_ReportsAWrongTypeWithItsField(t *testing.T) {
	raw := strings.Replace(exampleSpec(t), "  minProbes: 30", "  minProbes: thirty", 1)
	_, err := spec.Parse([]byte(raw))
	if ps := problemsOf(t, err); !hasProblem(ps, "canary.minProbes", "where int was expected") {
		t.Fatal(ps)
	}
}

// Every value that does not decode is named by its path, all in one report: a duration that
// does not parse, a number where a duration belongs, a word where a number belongs, a value
// where an object belongs.
func TestParse_NamesEveryValueThatDoesNotDecode(t *testing.T) {
	raw := exampleSpec(t)
	for _, r := range [][2]string{{"tokenTtl: 1h", "tokenTtl: 1x"}, {"bake: 10m}", "bake: 10}"}, {"minProbes: 30", "minProbes: thirty"}} {
		if !strings.Contains(raw, r[0]) {
			t.Fatalf("the example spec has no %q", r[0])
		}
		raw = strings.Replace(raw, r[0], r[1], 1)
	}
	_, err := spec.Parse([]byte(raw))
	ps := problemsOf(t, err)
	for _, want := range [][2]string{
		{"auth.tokenTtl", `"1x" is not a duration such as "90s"`},
		{"canary.steps[0].bake", "not a duration: write it as a string"},
		{"canary.minProbes", "a string where int was expected"},
	} {
		if !hasProblem(ps, want[0], want[1]) {
			t.Errorf("no problem %s: %s in %v", want[0], want[1], ps)
		}
	}
	if _, err := spec.Parse([]byte("service: orders\ngateway: 5\n")); !hasProblem(problemsOf(t, err), "gateway", "a number where an object was expected") {
		t.Errorf("gateway: 5: %v", err)
	}
}

func TestRead_StopsAtOneMebibyte(t *testing.T) {
	// An endless stream, as /dev/zero or a runaway pipe would be: Read must stop, not exhaust memory.
	_, err := spec.Read(endless{})
	if !errors.Is(err, spec.ErrTooLarge) || !strings.Contains(err.Error(), "1 MiB") {
		t.Fatalf("endless input: %v", err)
	}
	big := exampleSpec(t) + "\n# " + strings.Repeat("x", spec.MaxSpecBytes) + "\n"
	if _, err := spec.Parse([]byte(big)); !errors.Is(err, spec.ErrTooLarge) {
		t.Fatalf("a spec over the cap: %v", err)
	}
	if _, err := spec.Read(strings.NewReader(exampleSpec(t))); err != nil {
		t.Fatal(err)
	}
}

// endless reads zeros forever.
type endless struct{}

func (endless) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// FuzzParse_NeverPanicsOrAcceptsAnInvalidSpec: whatever Parse accepts is valid.
func FuzzParse_NeverPanicsOrAcceptsAnInvalidSpec(f *testing.F) {
	if example, err := os.ReadFile("../../starter/testdata/release.yaml"); err == nil {
		f.Add(example) // a valid spec, so mutations explore what Parse accepts
	}
	f.Add([]byte("service: orders\n"))
	f.Add([]byte(`{"service":"orders","service":"x"}`))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("canary:\n  steps:\n    - {weight: 5, bake: 10m, extra: 1}\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := spec.Parse(raw)
		if err == nil {
			if verr := s.Validate(); verr != nil {
				t.Fatalf("accepted an invalid spec: %v", verr)
			}
		}
	})
}

// A spec written by encoding/json (pipelines generate them) is read back as it was.
func TestParse_ReadsWhatASpecMarshalsTo(t *testing.T) {
	s := validSpec()
	s.Canary.StepTimeout = spec.Duration(time.Hour)
	s.Notify.Webhook = "oncall"
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got, err := spec.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("read back\n%+v\nwant\n%+v", got, s)
	}
}

// Aliases that expand exponentially (a "billion laughs" document) are refused quickly, well under
// the size cap.
func TestParse_RefusesExponentialAliases(t *testing.T) {
	bomb := "a: &a [x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		bomb += fmt.Sprintf("%s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", name, name, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = name
	}
	start := time.Now()
	_, err := spec.Parse([]byte(bomb))
	if _, ok := spec.AsValidation(err); !ok {
		t.Fatalf("an alias bomb: %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("an alias bomb took %s", d)
	}
}
