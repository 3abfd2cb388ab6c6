package pool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reprobox/reprobox/sandbox"
)

// fake is a backend with function fields (the pool's logic only; the real
// daemons are in cmd/reprobox's TestCheckTwoContainerdWorkers).
type fake struct {
	run      func(ctx context.Context, job *sandbox.Job) (*sandbox.Result, error)
	ping     func() error
	features []sandbox.Feature
	running  atomic.Int32
	maxSeen  atomic.Int32
	ids      []string
	mu       sync.Mutex
}

func (f *fake) Run(ctx context.Context, job *sandbox.Job) (*sandbox.Result, error) {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		m := f.maxSeen.Load()
		if n <= m || f.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	f.mu.Lock()
	f.ids = append(f.ids, job.ID)
	f.mu.Unlock()
	if f.run != nil {
		return f.run(ctx, job)
	}
	time.Sleep(5 * time.Millisecond)
	res := &sandbox.Result{}
	if job.Collect != nil {
		if err := job.Collect(ctx, res, ""); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func (f *fake) jobIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ids)
}

type pingFake struct{ *fake }

func (f pingFake) Ping(context.Context) error {
	if f.ping == nil {
		return nil
	}
	return f.ping()
}

type featFake struct{ *fake }

func (f featFake) Features() []sandbox.Feature { return f.features }

func newPool(t *testing.T, ws ...Worker) *Pool {
	t.Helper()
	p, err := New(Config{Workers: ws, Retry: -1})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSpreadsOverSlots runs more jobs than slots: no worker runs more than
// its Jobs at once, every worker is used, and Result.Worker says which.
func TestSpreadsOverSlots(t *testing.T) {
	a, b := &fake{}, &fake{}
	p := newPool(t, Worker{Name: "a", Backend: a, Jobs: 2}, Worker{Name: "b", Backend: b})
	if p.Slots() != 3 {
		t.Errorf("Slots = %d, want 3", p.Slots())
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	count := map[string]int{}
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seen string
			res, err := p.Run(context.Background(), &sandbox.Job{ID: fmt.Sprint("j", i), Collect: func(_ context.Context, r *sandbox.Result, _ string) error {
				seen = r.Worker
				return nil
			}})
			if err != nil {
				t.Error(err)
				return
			}
			if seen != res.Worker {
				t.Errorf("Collect saw worker %q, result %q", seen, res.Worker)
			}
			mu.Lock()
			count[res.Worker]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if a.maxSeen.Load() > 2 || b.maxSeen.Load() > 1 {
		t.Errorf("at once: a %d (2 slots), b %d (1 slot)", a.maxSeen.Load(), b.maxSeen.Load())
	}
	if count["a"] == 0 || count["b"] == 0 || count["a"]+count["b"] != 30 {
		t.Errorf("jobs per worker %v", count)
	}
}

// TestRerunOnFailedWorker: a worker whose daemon went away (its Run errs and
// its Ping fails) is marked down and the job runs on another, with a new ID
// and a note on the job's stderr; later jobs never go to the down worker.
func TestRerunOnFailedWorker(t *testing.T) {
	gone := errors.New("dial unix /run/a.sock: connect: no such file or directory")
	a := &fake{run: func(context.Context, *sandbox.Job) (*sandbox.Result, error) { return nil, gone }, ping: func() error { return gone }}
	b := &fake{}
	p := newPool(t, Worker{Name: "a", Backend: pingFake{a}}, Worker{Name: "b", Backend: pingFake{b}})
	var stderr bytes.Buffer
	res, err := p.Run(context.Background(), &sandbox.Job{ID: "rbx-1", Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if res.Worker != "b" {
		t.Errorf("ran on %q, want b", res.Worker)
	}
	if !strings.Contains(stderr.String(), "worker a failed") || !strings.Contains(stderr.String(), "again on another worker") {
		t.Errorf("stderr %q does not say the build was rerun", stderr.String())
	}
	if len(a.ids) != 1 || a.ids[0] != "rbx-1" || len(b.ids) != 1 || b.ids[0] == "rbx-1" {
		t.Errorf("ids: a %v, b %v: the rerun must have a new id", a.ids, b.ids)
	}
	if d := p.Down(); d["a"] == nil || d["b"] != nil {
		t.Errorf("Down = %v", d)
	}
	for range 5 {
		if res, err := p.Run(context.Background(), &sandbox.Job{}); err != nil || res.Worker != "b" {
			t.Errorf("after a went down: %v, %v", res, err)
		}
	}
	if len(a.ids) != 1 {
		t.Errorf("a down worker got jobs: %v", a.ids)
	}
}

// TestAllDown: when every worker fails, the error names each and why, and
// wraps ErrNoWorker.
func TestAllDown(t *testing.T) {
	mk := func(name string) *fake {
		e := fmt.Errorf("%s: connection refused", name)
		return &fake{run: func(context.Context, *sandbox.Job) (*sandbox.Result, error) { return nil, e }, ping: func() error { return e }}
	}
	p := newPool(t, Worker{Name: "tcp://a:1234", Backend: pingFake{mk("a")}}, Worker{Name: "tcp://b:1234", Backend: pingFake{mk("b")}})
	_, err := p.Run(context.Background(), &sandbox.Job{})
	if !errors.Is(err, ErrNoWorker) || !strings.Contains(err.Error(), "tcp://a:1234") || !strings.Contains(err.Error(), "tcp://b:1234") {
		t.Fatalf("error %v: want ErrNoWorker naming both workers", err)
	}
	_, err = p.Run(context.Background(), &sandbox.Job{})
	if !errors.Is(err, ErrNoWorker) || !strings.Contains(err.Error(), "is down since") {
		t.Errorf("second job: %v", err)
	}
}

// TestNotTheWorkersFault: an error from a worker that still answers its
// Ping, an unsupported job, a cancelled context or an error after Collect
// are returned as they are: no rerun, the worker stays up.
func TestNotTheWorkersFault(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(ctx context.Context, job *sandbox.Job) (*sandbox.Result, error)
		ping error
		ctx  func() context.Context
		down bool
	}{
		{name: "answers ping", run: func(context.Context, *sandbox.Job) (*sandbox.Result, error) {
			return nil, errors.New("image layout has no manifest")
		}},
		{name: "unsupported", ping: errors.New("gone"), run: func(context.Context, *sandbox.Job) (*sandbox.Result, error) {
			return nil, sandbox.Unsupported("fake", "umask")
		}},
		{name: "cancelled", ping: errors.New("gone"), run: func(ctx context.Context, _ *sandbox.Job) (*sandbox.Result, error) {
			<-ctx.Done()
			return nil, context.Cause(ctx)
		}, ctx: func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(10*time.Millisecond, cancel)
			return ctx
		}},
		{name: "after collect", ping: errors.New("gone"), down: true, run: func(ctx context.Context, job *sandbox.Job) (*sandbox.Result, error) {
			if err := job.Collect(ctx, &sandbox.Result{}, ""); err != nil {
				return nil, err
			}
			return nil, errors.New("clean up: connection reset")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ping := tc.ping
			a := &fake{run: tc.run, ping: func() error { return ping }}
			b := &fake{}
			// b first: the first job goes to b, which holds it.
			p := newPool(t, Worker{Name: "b", Backend: pingFake{b}}, Worker{Name: "a", Backend: pingFake{a}})
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx()
			}
			collects := 0
			// b is busy: the job goes to a.
			release := make(chan struct{})
			b.run = func(context.Context, *sandbox.Job) (*sandbox.Result, error) { <-release; return &sandbox.Result{}, nil }
			first := make(chan struct{})
			go func() { p.Run(context.Background(), &sandbox.Job{}); close(first) }()
			for deadline := time.Now().Add(5 * time.Second); b.running.Load() == 0; {
				if time.Now().After(deadline) {
					t.Fatal("the first job did not start on b")
				}
				time.Sleep(time.Millisecond)
			}
			_, err := p.Run(ctx, &sandbox.Job{Collect: func(context.Context, *sandbox.Result, string) error { collects++; return nil }})
			close(release)
			<-first
			if err == nil || !strings.Contains(err.Error(), "worker a") {
				t.Errorf("error %v, want one naming worker a", err)
			}
			if n := len(b.jobIDs()); n != 1 || collects > 1 {
				t.Errorf("rerun: b ran %d jobs, Collect called %d times", n, collects)
			}
			if _, down := p.Down()["a"]; down != tc.down {
				t.Errorf("a down = %v, want %v", down, tc.down)
			}
		})
	}
}

// TestRetry: a down worker whose Ping answers again after Retry takes jobs
// again.
func TestRetry(t *testing.T) {
	var broken atomic.Bool
	broken.Store(true)
	gone := errors.New("gone")
	a := &fake{ping: func() error {
		if broken.Load() {
			return gone
		}
		return nil
	}}
	a.run = func(ctx context.Context, job *sandbox.Job) (*sandbox.Result, error) {
		if broken.Load() {
			return nil, gone
		}
		return &sandbox.Result{}, nil
	}
	b := &fake{}
	var mu sync.Mutex
	now := time.Unix(0, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p, err := New(Config{Workers: []Worker{{Name: "a", Backend: pingFake{a}}, {Name: "b", Backend: pingFake{b}}}, Retry: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := p.Run(context.Background(), &sandbox.Job{}); err != nil || res.Worker != "b" {
		t.Fatalf("%v %v", res, err)
	}
	broken.Store(false)
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	p.Run(context.Background(), &sandbox.Job{}) // starts the probe
	deadline := time.Now().Add(5 * time.Second)
	for len(p.Down()) > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if len(p.Down()) > 0 {
		t.Fatalf("a still down after its ping answers: %v", p.Down())
	}
}

// TestFeatures: the intersection of the workers' features; a worker that
// says nothing does not narrow it.
func TestFeatures(t *testing.T) {
	a := &fake{features: []sandbox.Feature{sandbox.FeatureUmask, sandbox.FeatureUser, sandbox.FeatureFiles}}
	b := &fake{features: []sandbox.Feature{sandbox.FeatureFiles, sandbox.FeatureUmask}}
	p := newPool(t, Worker{Name: "a", Backend: featFake{a}}, Worker{Name: "b", Backend: featFake{b}}, Worker{Name: "c", Backend: &fake{}})
	if got, want := p.Features(), []sandbox.Feature{sandbox.FeatureFiles, sandbox.FeatureUmask}; !slices.Equal(got, want) {
		t.Errorf("Features = %v, want %v", got, want)
	}
	if got := newPool(t, Worker{Name: "c", Backend: &fake{}}).Features(); !slices.Equal(got, func() []sandbox.Feature {
		s := slices.Clone(allFeatures)
		slices.Sort(s)
		return s
	}()) {
		t.Errorf("no worker says: %v", got)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		ws   []Worker
		want string
	}{
		{nil, "no worker"},
		{[]Worker{{Backend: &fake{}}}, "no name"},
		{[]Worker{{Name: "a"}}, "no backend"},
		{[]Worker{{Name: "a", Backend: &fake{}}, {Name: "a", Backend: &fake{}}}, "given twice"},
		{[]Worker{{Name: "a", Backend: &fake{}, Jobs: -1}}, "-1 jobs"},
	} {
		if _, err := New(Config{Workers: tc.ws}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%v) = %v, want %q", tc.ws, err, tc.want)
		}
	}
}
