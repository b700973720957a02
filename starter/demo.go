package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rollgate/rollgate/testsuite"
)

func demoCmd() *cobra.Command {
	var opts testsuite.DemoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the release demo on a local test bed: one release promoted, one rolled back automatically, one by an operator",
		Long: `Start the local test bed (Temporal dev server, Vault dev server, DynamoDB, S3 and the API
Gateway emulator, all on loopback; the first run on a machine builds the Temporal and Vault
binaries, about 10 minutes), run three releases with a real worker and print each timeline and
rollback report. With --keep the bed stays up afterwards with the Temporal Web UI.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return testsuite.Demo(ctx, opts, os.Stdout)
		},
	}
	cmd.Flags().StringVar(&opts.LogDir, "logs", "", "folder for one log file per server")
	cmd.Flags().BoolVar(&opts.Keep, "keep", false, "keep the bed up afterwards, with the Temporal Web UI, until Ctrl-C")
	return cmd
}
