// Command demo is the README's main job: it starts the local test bed (Temporal dev server, Vault
// dev server, DynamoDB, S3 and the API Gateway emulator, all on loopback), runs four releases with
// a real worker (one promoted, one rolled back automatically, one rolled back by an operator, one
// rolled back by the analysis of its real traffic), prints each timeline and rollback report,
// then shows the token monitor acting on a stolen token between releases.
//
//	go run ./testsuite/cmd/demo          # exits when the releases and the monitor's act are done
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
one by an operator, one by the analysis of its real traffic; then the token monitor revokes a
stolen token still presented at the gateway. The first run on a machine builds the Temporal and
Vault server binaries and the Lambda emulator once (11 minutes on an idle 2-core machine, about
25 on a busy one); later runs start in about a second.

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
