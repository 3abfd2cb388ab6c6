package libcontainer_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/libcontainer"
)

func Example() {
	// In main, before anything else: a container's init is this program.
	libcontainer.MaybeInit()

	b, err := libcontainer.New(libcontainer.Config{StateDir: "/var/lib/reprobox/run"})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), time.Hour, fmt.Errorf("build took over an hour"))
	defer cancel()
	res, err := b.Run(ctx, &sandbox.Job{
		Spec: &specs.Spec{
			Root: &specs.Root{Path: "/var/lib/reprobox/rootfs/debian", Readonly: true},
			Process: &specs.Process{
				Args: []string{"cargo", "build", "--release"},
				Env:  []string{"PATH=/usr/bin:/bin", "HOME=/root"},
				Cwd:  "/src",
			},
			Mounts: []specs.Mount{
				{Destination: "/proc", Type: "proc", Source: "proc"},
				{Destination: "/src", Type: "bind", Source: "/home/me/project", Options: []string{"rbind"}},
			},
			Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			}},
		},
		Personality: 0x0040000, // ADDR_NO_RANDOMIZE
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
	})
	if err != nil {
		log.Fatal(err) // the sandbox failed, not the build
	}
	fmt.Println("build exited with", res.ExitCode)
}
