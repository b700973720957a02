package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rollgate/rollgate/workflows"
)

func TestParseStage_AcceptsApiSlashStageOrTheDeploymentIDAndRefusesTheRestAsInvalid(t *testing.T) {
	for _, c := range []struct {
		arg, want string // want is the deployment id; empty means refused
	}{
		{"abcdefghij/prod", "deploy/abcdefghij/prod"},
		{"deploy/abcdefghij/prod", "deploy/abcdefghij/prod"},
		{"abcdefghij", ""},
		{"abcdefghij/", ""},
		{"/prod", ""},
		{"a/b/c", ""},
		{"deploy/abcdefghij", ""},
		{"deploy/", ""},
		{"", ""},
	} {
		s, err := parseStage(c.arg)
		if c.want == "" {
			var ce *codeError
			if !errors.As(err, &ce) || ce.code != exitInvalid || !strings.Contains(err.Error(), "<apiId>/<stage>") {
				t.Errorf("parseStage(%q) = %v, %v; want an invalid-input error naming <apiId>/<stage>", c.arg, s, err)
			}
			continue
		}
		if err != nil || s.deploymentID() != c.want || stageOf(s.deploymentID()) != s.String() {
			t.Errorf("parseStage(%q) = %+v, %v; want %s", c.arg, s, err, c.want)
		}
	}
	s, _ := parseStage("abcdefghij/prod")
	if got := s.rollbackID(); got != workflows.RollbackWorkflowID("abcdefghij", "prod") {
		t.Errorf("rollbackID = %s", got)
	}
	if tg := s.target(); tg.APIID != "abcdefghij" || tg.Stage != "prod" {
		t.Errorf("target = %+v", tg)
	}
}

// A parsed stage's deployment id names the same stage: the starter passes ids around and
// turns them back into stages for its messages.
func FuzzParseStage_RoundTrips(f *testing.F) {
	for _, seed := range []string{"abcdefghij/prod", "deploy/a/b", "a//b", "/", "deploy/deploy/x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		s, err := parseStage(arg)
		if err != nil {
			return
		}
		again, err := parseStage(s.deploymentID())
		if err != nil || again != s || strings.Contains(s.APIID, "/") || strings.Contains(s.Stage, "/") || stageOf(s.deploymentID()) != s.String() {
			t.Fatalf("parseStage(%q) = %+v; again: %+v, %v", arg, s, again, err)
		}
	})
}

func TestPrintTimeline_OneAlignedLinePerEventAfterTheIndent(t *testing.T) {
	at := time.Date(2026, 1, 2, 13, 4, 5, 0, time.UTC)
	var b bytes.Buffer
	printTimeline(&b, "  ", []workflows.Event{
		{At: at, Phase: workflows.PhaseBaking, Message: "step 1 of 3 at 10%"},
		{At: at.Add(time.Minute), Phase: workflows.Phase("promoted"), Message: "done"},
	})
	want := "  13:04:05  baking        step 1 of 3 at 10%\n  13:05:05  promoted      done\n"
	if b.String() != want {
		t.Fatalf("timeline:\n%q\nwant\n%q", b.String(), want)
	}
}
