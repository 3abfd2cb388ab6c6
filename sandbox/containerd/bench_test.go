package containerd_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/reprobox/reprobox/policies"
	"github.com/reprobox/reprobox/sandbox"
)

// BenchmarkTrue measures a job running `true` from Run to its return: root
// and source snapshots, host mounts, container, task start, exit and the
// removal of it all, with a normalized spec (its personality program and
// hooks included). The image and the source snapshot are in the daemon
// before the timing starts. bench/backends runs it beside libcontainer's.
//
// "normalized" is a build's spec as policies renders it (seccomp, the
// personality program, the domainname hook, the user database as files);
// "plain" drops those (no seccomp, no personality, no domainname, no files),
// closer to the runc default spec that bench/start gives libcontainer.
func BenchmarkTrue(b *testing.B) {
	be := newBackend(b)
	s := policies.Normalized(policies.DefaultSourceDateEpoch)
	s.Clock = 0
	src := source(b, s.UID, s.GID, map[string]string{"a": "1"})
	normalized := renderJob(b, s, "", src, "/bin/true")
	plain := renderJob(b, s, "", src, "/bin/true")
	plain.Personality, plain.Files = 0, nil
	plain.Spec.Linux.Seccomp, plain.Spec.Domainname = nil, ""
	b.Run("normalized", func(b *testing.B) { benchJob(b, be, normalized) })
	b.Run("plain", func(b *testing.B) { benchJob(b, be, plain) })
}

func benchJob(b *testing.B, be sandbox.Backend, job *sandbox.Job) {
	runJob := func() time.Duration {
		j := *job
		t0 := time.Now()
		res, err := be.Run(context.Background(), &j)
		d := time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if !res.Success() {
			b.Fatalf("true exited %d", res.ExitCode)
		}
		return d
	}
	// Import, unpack, source copy, personality program: once, untimed.
	runJob()
	runJob()
	b.ResetTimer()
	times := make([]time.Duration, 0, b.N)
	for range b.N {
		times = append(times, runJob())
	}
	b.StopTimer()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(times[0].Microseconds())/1000, "ms-min")
}
