package runner

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/reprobox/reprobox/policies"
)

func TestWorkerFindings(t *testing.T) {
	b := func(n int, worker string, bin string, set ...string) CheckBuild {
		if set == nil {
			set = []string{}
		}
		return CheckBuild{N: n, Set: set, Worker: worker, Artifacts: map[string]string{"bin": bin, "lib": "same"}}
	}
	failed := CheckBuild{N: 9, Set: []string{}, Worker: "c", Failed: "the build was killed: out of memory"}
	for _, tc := range []struct {
		name   string
		builds []CheckBuild
		want   []WorkerFinding
	}{
		{"one worker", []CheckBuild{b(1, "a", "x"), b(2, "a", "y"), b(3, "a", "x")}, nil},
		{"no worker", []CheckBuild{b(1, "", "x"), b(2, "", "y")}, nil},
		{"all agree", []CheckBuild{b(1, "a", "x"), b(2, "b", "x"), b(3, "c", "x"), b(4, "a", "v", "time"), b(5, "b", "v", "time")}, nil},
		{"c differs on the control", []CheckBuild{b(1, "a", "x"), b(2, "b", "x"), b(3, "c", "z"), b(4, "a", "x")}, []WorkerFinding{{
			Worker: "c", Set: []string{}, Artifact: "bin", Got: []string{"z"}, Agreed: "x", Builds: []int{3}, AgreedBy: []int{1, 2, 4}, Others: []string{"a", "b"},
		}}},
		{"c differs on a variant", []CheckBuild{b(1, "a", "x"), b(2, "c", "x"), b(3, "a", "v", "time"), b(4, "b", "v", "time"), b(5, "c", "w", "time")}, []WorkerFinding{{
			Worker: "c", Set: []string{"time"}, Artifact: "bin", Got: []string{"w"}, Agreed: "v", Builds: []int{5}, AgreedBy: []int{3, 4}, Others: []string{"a", "b"},
		}}},
		{"a failed build", []CheckBuild{b(1, "a", "x"), b(2, "b", "x"), failed}, []WorkerFinding{
			{Worker: "c", Set: []string{}, Artifact: "bin", Got: []string{"failed: " + failed.Failed}, Agreed: "x", Builds: []int{9}, AgreedBy: []int{1, 2}, Others: []string{"a", "b"}},
			{Worker: "c", Set: []string{}, Artifact: "lib", Got: []string{"failed: " + failed.Failed}, Agreed: "same", Builds: []int{9}, AgreedBy: []int{1, 2}, Others: []string{"a", "b"}},
		}},
		{"one other build is not agreement", []CheckBuild{b(1, "a", "x"), b(2, "b", "z")}, nil},
		{"others disagree among themselves", []CheckBuild{b(1, "a", "x"), b(2, "b", "y"), b(3, "c", "z"), b(4, "a", "x")}, nil},
		{"nondeterministic elsewhere", []CheckBuild{b(1, "a", "x"), b(2, "b", "x"), b(3, "c", "z"), b(4, "a", "v", "time"), b(5, "b", "u", "time")}, nil},
		{"c gave the agreed value once", []CheckBuild{b(1, "a", "x"), b(2, "b", "x"), b(3, "c", "z"), b(4, "c", "x")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := WorkerFindings(tc.builds); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("WorkerFindings =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// TestCheckNamesOddWorker runs the check's logic with simulated builds spread
// over three workers, one of which gives another binary whatever the
// factors: the report lists each build's worker, counts builds per worker and
// names the odd one.
func TestCheckNamesOddWorker(t *testing.T) {
	p := &Plan{Base: policies.Normalized(policies.DefaultSourceDateEpoch)}
	opts := CheckOptions{Vary: []string{"time", "umask"}, Seed: 1, Jobs: 2}
	c := newChecker(&Runner{}, p, opts, "")
	var mu sync.Mutex
	workers := []string{"a", "b", "odd"}
	// The k-th build of each set runs on workers[k%3], whatever order the
	// builds start in.
	perSet := map[string]int{}
	c.make = func(_ context.Context, n int, set []string) (*observation, error) {
		mu.Lock()
		defer mu.Unlock()
		k := setKey(set)
		w := workers[perSet[k]%3]
		perSet[k]++
		h := "good"
		if w == "odd" {
			h = "odd"
		}
		return &observation{hashes: map[string]string{"bin": h}, files: map[string]string{}, worker: w}, nil
	}
	c.diff = func(context.Context, string, *observation, *observation, policies.Settings) ([]string, string, error) {
		return nil, "", nil
	}
	rep, err := c.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.PerBuild) != rep.Builds {
		t.Fatalf("%d builds listed, %d made", len(rep.PerBuild), rep.Builds)
	}
	for i, b := range rep.PerBuild {
		if b.N != i+1 || b.Worker == "" {
			t.Errorf("build %d: %+v", i+1, b)
		}
	}
	if rep.Workers["a"]+rep.Workers["b"]+rep.Workers["odd"] != rep.Builds {
		t.Errorf("Workers %v for %d builds", rep.Workers, rep.Builds)
	}
	named := map[string]bool{}
	for _, f := range rep.WorkerFindings {
		named[f.Worker] = true
	}
	if !named["odd"] || named["a"] || named["b"] {
		t.Errorf("findings %+v: want the worker odd named, and only it", rep.WorkerFindings)
	}
	var html strings.Builder
	if err := WriteCheckHTML(&html, "proj", rep, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<h2>Workers</h2>", "worker does not reproduce</span> <b class=\"mono\">odd</b>"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
}
