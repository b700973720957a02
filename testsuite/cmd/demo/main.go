// Command demo is the README's main job: it starts the local test bed (Temporal dev server, Vault
// dev server, DynamoDB, S3 and the API Gateway emulator, all on loopback), runs three releases with
// a real worker (one promoted, one rolled back automatically, one rolled back by an operator) and
// prints each timeline and rollback report.
//
//	go run ./testsuite/cmd/demo          # exits when the three releases are done
//	go run ./testsuite/cmd/demo --keep   # then keeps the bed up with the Temporal Web UI until Ctrl-C
//
// It lives beside the test bed, not in the starter, so the operator's binary carries no test bed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rollgate/rollgate/testsuite"
)

func main() {
	var opts testsuite.DemoOptions
	flag.StringVar(&opts.LogDir, "logs", "", "folder for one log file per server")
	flag.BoolVar(&opts.Keep, "keep", false, "keep the bed up afterwards, with the Temporal Web UI, until Ctrl-C")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `Usage: go run ./testsuite/cmd/demo [--keep] [--logs DIR]

Runs the release demo on a local test bed: one release promoted, one rolled back automatically,
one by an operator. The first run on a machine builds the Temporal and Vault server binaries once
(about 15 minutes on 2 cores); later runs start in about a second.

`)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(3)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := testsuite.Demo(ctx, opts, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
