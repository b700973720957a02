package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The programs operators and pipelines run carry neither the test bed (the API Gateway emulator,
// gofakes3, the dev-server launcher) nor test helpers of their own. The Temporal SDK's internal
// package links the standard testing package itself (its test environment lives there), so the
// rule for "testing" is that no rollgate package a program links imports it.
func TestProductionPrograms_DoNotLinkTheTestBed(t *testing.T) {
	programs := []string{"./starter", "./worker"}
	if _, err := os.Stat("../authorizer"); err == nil {
		programs = append(programs, "./authorizer")
	}
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}"}, programs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const module = "github.com/rollgate/rollgate"
	seen := 0
	for line := range strings.Lines(string(out)) {
		pkg, imports, _ := strings.Cut(strings.TrimSpace(line), " ")
		if pkg == module+"/testsuite" || strings.HasPrefix(pkg, module+"/testsuite/") {
			t.Errorf("a production program links the test bed package %s", pkg)
		}
		if !strings.HasPrefix(pkg, module+"/") {
			continue
		}
		seen++
		for _, imp := range strings.Fields(imports) {
			if imp == "testing" {
				t.Errorf("%s imports testing", pkg)
			}
		}
	}
	if seen < len(programs) {
		t.Fatalf("go list named %d rollgate packages for %v: the check saw nothing", seen, programs)
	}
}
