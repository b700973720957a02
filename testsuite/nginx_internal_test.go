package testsuite

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README's "Behind nginx" snippet is what the forward-auth tests run: every directive of it,
// in order, with the README's addresses, is in the bed's configuration.
func TestNginxConf_RunsTheREADMESnippet(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)### Behind nginx.*?```nginx\n(.*?)```").FindSubmatch(readme)
	if block == nil {
		t.Fatal("README: no nginx block under \"Behind nginx\"")
	}
	conf, err := renderNginxConf(t.TempDir(), 8081, NginxOptions{Backend: "127.0.0.1:9000", Authorizer: "127.0.0.1:8080", Release: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	have := directives(string(conf))
	next := 0
	for _, want := range directives(string(block[1])) {
		for next < len(have) && have[next] != want {
			next++
		}
		if next == len(have) {
			t.Fatalf("README directive %q is not in the tested configuration (in this order)", want)
		}
	}
}

// directives are a configuration's lines without comments, with spaces collapsed.
func directives(conf string) []string {
	var out []string
	for _, line := range strings.Split(conf, "\n") {
		line, _, _ = strings.Cut(line, "#")
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			out = append(out, line)
		}
	}
	return out
}

func TestNginxConf_RefusesAMissingAddress(t *testing.T) {
	for _, opts := range []NginxOptions{{Backend: "127.0.0.1:1"}, {Authorizer: "127.0.0.1:1"}} {
		if _, err := renderNginxConf(t.TempDir(), 1, opts); err == nil || !strings.Contains(err.Error(), "Backend and Authorizer") {
			t.Errorf("%+v: %v", opts, err)
		}
	}
}
