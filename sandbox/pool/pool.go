// Package pool runs sandbox jobs on several workers, each a sandbox.Backend
// (a containerd or BuildKit daemon on some machine), as one Backend.
//
// A job takes a free slot on any live worker (each worker has a number of
// slots, one job each). When a worker fails a job (Run returns an error that
// is not the job's own: not the caller's cancellation, not an unsupported
// part of the job, and the worker does not answer its Ping), the worker is
// marked down and the job runs again, from the start, on another live
// worker; the job's Stderr gets a line saying so. A down worker is probed
// again after Config.Retry and comes back when it answers. When no live
// worker is left for a job, Run fails with an error naming every worker and
// why it is down.
//
// Result.Worker names the worker that ran the job.
package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reprobox/reprobox/sandbox"
)

// A Worker is one backend of a pool.
type Worker struct {
	// Name identifies the worker in results and messages (its daemon's
	// address); names are unique in a pool.
	Name string
	// Backend runs the worker's jobs. When it implements sandbox.Pinger,
	// the pool asks it after an error whether the worker itself failed.
	Backend sandbox.Backend
	// Jobs is how many jobs the worker runs at once; 0 means 1.
	Jobs int
}

// DefaultRetry is the default of Config.Retry.
const DefaultRetry = 30 * time.Second

// pingTimeout bounds one Ping.
const pingTimeout = 10 * time.Second

// Config configures a Pool.
type Config struct {
	Workers []Worker
	// Retry is how long a down worker stays down before it is probed again
	// (with Ping; a worker that cannot be pinged stays down); 0 means
	// DefaultRetry, a negative value never.
	Retry time.Duration
	// Logger receives a warning when a worker goes down or comes back; nil
	// discards them.
	Logger *slog.Logger
	// Now is the clock for Retry; nil means time.Now.
	Now func() time.Time
}

// ErrNoWorker is returned (wrapped) when no live worker is left for a job.
var ErrNoWorker = errors.New("no live worker")

// A Pool is a sandbox.Backend over several workers. It is safe for
// concurrent use.
type Pool struct {
	workers []*worker
	retry   time.Duration
	log     *slog.Logger
	now     func() time.Time

	mu sync.Mutex
	// changed is closed (and replaced) whenever a slot frees or a worker
	// comes back.
	changed chan struct{}
}

type worker struct {
	Worker
	busy      int
	down      error // why the worker is down, or nil
	downSince time.Time
	probing   bool
}

var (
	_ sandbox.Backend  = (*Pool)(nil)
	_ sandbox.Features = (*Pool)(nil)
)

// New returns a pool of cfg.Workers. A worker without a name or a backend,
// two workers with one name, or a negative job count is an error.
func New(cfg Config) (*Pool, error) {
	if len(cfg.Workers) == 0 {
		return nil, errors.New("pool: no worker")
	}
	p := &Pool{retry: cfg.Retry, log: cfg.Logger, now: cfg.Now, changed: make(chan struct{})}
	if p.retry == 0 {
		p.retry = DefaultRetry
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	seen := map[string]bool{}
	for _, w := range cfg.Workers {
		switch {
		case w.Name == "":
			return nil, errors.New("pool: a worker has no name")
		case w.Backend == nil:
			return nil, fmt.Errorf("pool: worker %s has no backend", w.Name)
		case w.Jobs < 0:
			return nil, fmt.Errorf("pool: worker %s: %d jobs", w.Name, w.Jobs)
		case seen[w.Name]:
			return nil, fmt.Errorf("pool: worker %s is given twice", w.Name)
		}
		seen[w.Name] = true
		if w.Jobs == 0 {
			w.Jobs = 1
		}
		p.workers = append(p.workers, &worker{Worker: w})
	}
	return p, nil
}

// Slots is how many jobs the pool runs at once when every worker is live:
// the sum of the workers' Jobs.
func (p *Pool) Slots() int {
	n := 0
	for _, w := range p.workers {
		n += w.Jobs
	}
	return n
}

// Names lists the workers' names, in the order given.
func (p *Pool) Names() []string {
	var out []string
	for _, w := range p.workers {
		out = append(out, w.Name)
	}
	return out
}

// Down lists the workers that are down now, with why, by name.
func (p *Pool) Down() map[string]error {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]error{}
	for _, w := range p.workers {
		if w.down != nil {
			out[w.Name] = w.down
		}
	}
	return out
}

// allFeatures is what a worker that does not implement sandbox.Features
// applies (every feature, as the runner takes it).
var allFeatures = []sandbox.Feature{
	sandbox.FeatureCPUSet, sandbox.FeatureFiles, sandbox.FeaturePersonality, sandbox.FeatureReverseDirents,
	sandbox.FeatureUTSNames, sandbox.FeatureUmask, sandbox.FeatureUser,
}

// Features is the intersection of the workers' features: a job may run on
// any of them. A worker that does not implement sandbox.Features applies
// every feature and does not narrow it.
func (p *Pool) Features() []sandbox.Feature {
	var out []sandbox.Feature
	first := true
	for _, w := range p.workers {
		fb, ok := w.Backend.(sandbox.Features)
		if !ok {
			continue
		}
		fs := fb.Features()
		if first {
			out, first = slices.Clone(fs), false
			continue
		}
		out = slices.DeleteFunc(out, func(f sandbox.Feature) bool { return !slices.Contains(fs, f) })
	}
	if first {
		out = slices.Clone(allFeatures)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Run runs job on a free slot of a live worker, and again on another when
// that worker fails it. See [sandbox.Backend] for the contract; the result's
// Worker names the worker. A job whose Collect has been called is never run
// again (Collect is called once): when its worker fails after that, Run
// returns the error.
func (p *Pool) Run(ctx context.Context, job *sandbox.Job) (*sandbox.Result, error) {
	if job == nil {
		return nil, errors.New("pool: nil job")
	}
	tried := map[*worker]error{}
	for attempt := 0; ; attempt++ {
		w, err := p.acquire(ctx, tried)
		if err != nil {
			return nil, err
		}
		res, collected, err := p.runOn(ctx, w, job, attempt)
		p.release(w)
		if err == nil {
			res.Worker = w.Name
			return res, nil
		}
		err = fmt.Errorf("pool: worker %s: %w", w.Name, err)
		if ctx.Err() != nil || errors.Is(err, sandbox.ErrUnsupported) {
			return nil, err
		}
		if perr := p.ping(ctx, w); perr == nil {
			// The worker answers: the error is the job's, and it would
			// be the same elsewhere.
			return nil, err
		} else {
			p.markDown(w, err, perr)
		}
		if collected {
			return nil, err
		}
		tried[w] = err
		if job.Stderr != nil {
			fmt.Fprintf(job.Stderr, "\nreprobox: worker %s failed: %v\nreprobox: running the build again on another worker\n", w.Name, oneLine(err))
		}
	}
}

// runOn runs job on w: its ID changed on a rerun (the failed attempt's
// container may linger on a worker that comes back), its Collect
// recorded.
func (p *Pool) runOn(ctx context.Context, w *worker, job *sandbox.Job, attempt int) (*sandbox.Result, bool, error) {
	j := *job
	if attempt > 0 && j.ID != "" {
		j.ID = fmt.Sprintf("%s.%d", job.ID, attempt)
		if sandbox.CheckID(j.ID) != nil {
			j.ID = sandbox.NewID()
		}
	}
	var mu sync.Mutex
	collected := false
	if job.Collect != nil {
		j.Collect = func(ctx context.Context, res *sandbox.Result, tree string) error {
			mu.Lock()
			collected = true
			mu.Unlock()
			res.Worker = w.Name
			return job.Collect(ctx, res, tree)
		}
	}
	res, err := w.Backend.Run(ctx, &j)
	mu.Lock()
	defer mu.Unlock()
	if err == nil && res == nil {
		err = errors.New("no result and no error")
	}
	return res, collected, err
}

// ping asks w whether it still works; a worker that cannot be pinged is
// taken to have failed.
func (p *Pool) ping(ctx context.Context, w *worker) error {
	pg, ok := w.Backend.(sandbox.Pinger)
	if !ok {
		return errors.New("the worker cannot be pinged")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pingTimeout)
	defer cancel()
	return pg.Ping(ctx)
}

func (p *Pool) markDown(w *worker, err, perr error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w.down == nil {
		w.down, w.downSince = err, p.now()
		p.log.Warn("worker down", "worker", w.Name, "err", err, "ping", perr)
		p.broadcast() // jobs waiting only for w fail now
	}
}

// acquire takes a slot on the least busy live worker not in tried, waiting
// while every such worker is busy. It fails when no live worker outside tried
// is left.
func (p *Pool) acquire(ctx context.Context, tried map[*worker]error) (*worker, error) {
	for {
		p.mu.Lock()
		p.probeDue()
		var best *worker
		live := 0
		for _, w := range p.workers {
			if w.down != nil || tried[w] != nil {
				continue
			}
			live++
			if w.busy < w.Jobs && (best == nil || w.busy*best.Jobs < best.busy*w.Jobs) {
				best = w
			}
		}
		if best != nil {
			best.busy++
			p.mu.Unlock()
			return best, nil
		}
		if live == 0 {
			err := p.noWorker(tried)
			p.mu.Unlock()
			return nil, err
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("pool: waiting for a free worker: %w", context.Cause(ctx))
		case <-changed:
		}
	}
}

// noWorker is the error when no live worker is left: every worker and why
// it cannot take the job. p.mu is held.
func (p *Pool) noWorker(tried map[*worker]error) error {
	var why []string
	for _, w := range p.workers {
		switch {
		case tried[w] != nil:
			why = append(why, fmt.Sprintf("%s failed this job: %v", w.Name, oneLine(tried[w])))
		case w.down != nil:
			why = append(why, fmt.Sprintf("%s is down since %s: %v", w.Name, w.downSince.UTC().Format(time.RFC3339), oneLine(w.down)))
		}
	}
	return fmt.Errorf("pool: %w of %d: %s; start the daemons again or give other --addr", ErrNoWorker, len(p.workers), strings.Join(why, "; "))
}

// probeDue starts a Ping of every down worker whose Retry has passed; one
// that answers is live again. p.mu is held.
func (p *Pool) probeDue() {
	if p.retry < 0 {
		return
	}
	for _, w := range p.workers {
		if w.down == nil || w.probing || p.now().Sub(w.downSince) < p.retry {
			continue
		}
		if _, ok := w.Backend.(sandbox.Pinger); !ok {
			continue
		}
		w.probing = true
		go func() {
			err := p.ping(context.Background(), w)
			p.mu.Lock()
			defer p.mu.Unlock()
			w.probing = false
			if err != nil {
				w.downSince = p.now()
				return
			}
			p.log.Warn("worker back", "worker", w.Name)
			w.down = nil
			p.broadcast()
		}()
	}
}

func (p *Pool) release(w *worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w.busy--
	p.broadcast()
}

// broadcast wakes every acquire waiting. p.mu is held.
func (p *Pool) broadcast() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// oneLine is err's message on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
