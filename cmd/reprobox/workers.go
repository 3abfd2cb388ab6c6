package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/reprobox/reprobox/runner"
	"github.com/reprobox/reprobox/sandbox"
	"github.com/reprobox/reprobox/sandbox/pool"
)

// onWorkers is " on N workers (A, B)" for a pool of workers, else "".
func onWorkers(b sandbox.Backend) string {
	p, ok := b.(*pool.Pool)
	if !ok {
		return ""
	}
	return fmt.Sprintf(" on %d worker(s): %s", len(p.Names()), strings.Join(p.Names(), ", "))
}

// printWorkers writes, for a check whose builds ran on several workers, the
// builds each ran and the workers that do not reproduce.
func printWorkers(w io.Writer, rep *runner.CheckReport) {
	if len(rep.Workers) == 0 {
		return
	}
	var per []string
	for _, name := range slices.Sorted(maps.Keys(rep.Workers)) {
		per = append(per, fmt.Sprintf("%s %d", name, rep.Workers[name]))
	}
	fmt.Fprintf(w, "\nbuilds per worker: %s\n", strings.Join(per, ", "))
	for _, f := range rep.WorkerFindings {
		set := "the control"
		if len(f.Set) > 0 {
			set = "vary " + strings.Join(f.Set, ",")
		}
		fmt.Fprintf(w, "WORKER %s DOES NOT REPRODUCE: %s (%s) gave %s in build(s) %s; %d build(s) on %s agree on %s\n",
			f.Worker, f.Artifact, set, strings.Join(f.Got, ", "), joinInts(f.Builds), len(f.AgreedBy), strings.Join(f.Others, ", "), f.Agreed)
	}
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}
