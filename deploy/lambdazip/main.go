// Command lambdazip packs a Lambda bootstrap into the deployment package the provided.al2023
// runtime runs: a zip with one executable file named bootstrap at its root. `make authorizer`
// runs it; it needs nothing but Go, where the zip tool is not always installed.
//
//	go run ./deploy/lambdazip -o bin/authorizer/arm64.zip bin/authorizer/arm64/bootstrap
package main

import (
	"archive/zip"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// packaged is the time every entry carries, so the same binary makes the same zip (and an
// unchanged function is not uploaded again); zip dates start in 1980.
var packaged = time.Date(1980, time.January, 1, 0, 0, 0, 0, time.UTC)

func main() {
	out := flag.String("o", "", "the zip to write")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: lambdazip -o FUNCTION.zip BOOTSTRAP")
	}
	flag.Parse()
	if *out == "" || flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := pack(*out, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "lambdazip:", err)
		os.Exit(1)
	}
}

// pack writes the zip next to its final name and renames it, so a failed run leaves no
// truncated package behind for a deploy to pick up.
func pack(out, bootstrap string) (err error) {
	in, err := os.Open(bootstrap)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(out), ".lambdazip-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", out, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

// write puts bootstrap at the zip's root with Unix mode 0755 in its external attributes,
// which is where Lambda reads the execute bit from.
func write(w io.Writer, bootstrap io.Reader) error {
	z := zip.NewWriter(w)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate, Modified: packaged}
	h.SetMode(0o755)
	f, err := z.CreateHeader(h)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, bootstrap); err != nil {
		return err
	}
	return z.Close()
}
