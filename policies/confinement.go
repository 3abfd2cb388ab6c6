package policies

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/reprobox/reprobox/internal/human"
)

// Capabilities are the capabilities of a build's process (bounding,
// effective and permitted; none inheritable or ambient), runc's defaults less
// everything that touches files, owners or users: the build runs as an
// ordinary user, and with no_new_privs it cannot gain more.
var Capabilities = []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}

// Namespaces are the namespaces a build gets, all new. The user namespace is
// the host's: the build's uid is the host's uid (the image's files are owned
// by root, so a build user cannot change them anyway).
var Namespaces = []specs.LinuxNamespaceType{
	specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace,
	specs.UTSNamespace, specs.MountNamespace, specs.CgroupNamespace,
}

func namespaces() []specs.LinuxNamespace {
	ns := make([]specs.LinuxNamespace, len(Namespaces))
	for i, t := range Namespaces {
		ns[i] = specs.LinuxNamespace{Type: t}
	}
	return ns
}

// Confinement describes, for people, what a build may do with the kernel:
// its capabilities, namespaces, seccomp profile and default limits
// (reprobox factors prints it).
func Confinement() string {
	var b strings.Builder
	ns := make([]string, len(Namespaces))
	for i, t := range Namespaces {
		ns[i] = string(t)
	}
	fmt.Fprintf(&b, "Every build runs as an ordinary user (uid %d; another with the user factor) with no_new_privs and\n", DefaultUID)
	fmt.Fprintf(&b, "  capabilities: %s (no others)\n", strings.Join(Capabilities, ", "))
	fmt.Fprintf(&b, "  namespaces:   new %s; the host's user and time namespaces; network: loopback only\n", strings.Join(ns, ", "))
	fmt.Fprintf(&b, "  seccomp:      Docker's default profile; what it does not allow fails with EPERM. Denied among others:\n")
	for _, line := range wrap(DeniedSyscalls, 78) {
		fmt.Fprintf(&b, "                %s\n", line)
	}
	fmt.Fprintf(&b, "                %s;\n", strings.Replace(DeniedClone, "; ", ";\n                ", 1))
	fmt.Fprintf(&b, "                personality(2) only with %#x: query, PER_LINUX(32), UNAME26\n", AllowedPersonalities)
	fmt.Fprintf(&b, "                (reprobox sets the aslr and kernel factors' personality before the profile applies)\n")
	fmt.Fprintf(&b, "  limits:       CPUs as the num_cpus factor (a cpuset and a CFS quota of that many CPUs);\n")
	fmt.Fprintf(&b, "                by default (reprobox.toml sets them) memory %s, disk %s written to the build\n",
		human.Bytes(DefaultMemoryBytes), human.Bytes(DefaultDiskBytes))
	fmt.Fprintf(&b, "                directory, %d processes and threads; tmpfs /tmp 8 GiB, /var/tmp 1 GiB, /dev/shm 1 GiB,\n", DefaultPids)
	fmt.Fprintf(&b, "                HOME 4 GiB, counted in memory\n")
	return b.String()
}

func wrap(words []string, width int) []string {
	var lines []string
	cur := ""
	for _, w := range words {
		if cur != "" && len(cur)+1+len(w) > width {
			lines = append(lines, cur)
			cur = ""
		}
		if cur != "" {
			cur += " "
		}
		cur += w
	}
	return append(lines, cur)
}
