//go:debug x509negativeserial=1

// Command vault is the unmodified Vault CLI and server, built from the module proxy so the test bed
// can run a real `vault server -dev`. A plugin dependency embeds certificates with negative serial
// numbers, which Go 1.23+ rejects unless the debug setting above is on.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
