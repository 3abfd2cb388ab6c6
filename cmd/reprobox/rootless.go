package main

import (
	"os"
	"strings"

	"github.com/reprobox/reprobox/internal/rootless"
)

// enterRootless moves an ordinary user's reprobox into its user namespace
// (see internal/rootless) after checking, with the host's view of owners,
// that its data directory is a private directory of the user.
func enterRootless() {
	rootless.MaybeEnter(func() error {
		return rootless.SecureDir(dataDirFromArgs(os.Args[1:]))
	})
}

// dataDirFromArgs is the data directory the command line asks for, read
// before cobra parses it (the namespace is entered first): --data-dir before
// any "--", else the default.
func dataDirFromArgs(args []string) string {
	dir := defaultDataDir()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if v, ok := strings.CutPrefix(a, "--data-dir="); ok {
			dir = v
		} else if a == "--data-dir" && i+1 < len(args) {
			dir = args[i+1]
			i++
		}
	}
	return dir
}
