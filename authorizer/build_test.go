package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The Lambda bootstrap for provided.al2023 is a static Linux binary named bootstrap, for both
// Lambda architectures, built without the RPC mode that only the go1.x runtime used
// (-tags lambda.norpc): what `make authorizer` builds.
func TestLambdaBootstrap_CrossCompilesStaticForBothArchitectures(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the Lambda bootstrap for amd64 and arm64 (minutes on a cold build cache); runs without -short")
	}
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		out := filepath.Join(t.TempDir(), "bootstrap")
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: go build: %v\n%s", arch, err, b)
		}
		f, err := elf.Open(out)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		defer f.Close()
		if f.Machine != machine {
			t.Errorf("%s: machine %v, want %v", arch, f.Machine, machine)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s: dynamically linked; provided.al2023 runs a static bootstrap", arch)
			}
		}
		syms, err := f.Symbols()
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		for _, s := range syms {
			if strings.HasPrefix(s.Name, "net/rpc.") {
				t.Fatalf("%s: links net/rpc: the lambda.norpc tag did not apply", arch)
			}
		}
	}
}
