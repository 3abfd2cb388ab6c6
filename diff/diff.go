// Package diff compares build artifacts structurally and explains every
// difference: which member of which archive, which ELF section, symbol, function or
// DWARF unit, which line of text or which bytes, and which perturbed build input
// (a build path, a hostname, a time) shows up in the differing bytes.
//
// It descends through directories, tar (plain, gzip, xz, zstd, bzip2), ar and rlib,
// zip, ELF and Rust metadata, hashing or comparing first and descending only into
// what differs. Archives are streamed, independent comparisons run in parallel,
// and the bytes held in memory are bounded by Options.MaxMemory; larger content
// goes to temporary files. Format parsers live in subpackages (diff/ar, diff/tar,
// diff/zip, diff/elf, diff/rmeta, diff/compress) and read through io.ReaderAt.
//
// Differences are returned values. Input that cannot be parsed is not an error:
// the node that holds it carries the parser's error, with its byte offset, and a
// byte-level diff instead.
package diff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"
)

// A Label is a perturbed value of one factor of a check. A difference whose bytes
// contain one of Values is labelled with Factor.
type Label struct {
	Factor string   // e.g. "build_path", "hostname", "user", "locale", "timezone"
	Values []string // e.g. ["/build/reprobox-variant/a/b/src"]
}

// A TimeRange labels with Factor any time found in differing bytes that falls in
// [From, To]: decimal epoch seconds, RFC 3339 and similar date-times, C __DATE__
// strings, and archive and file modification times.
type TimeRange struct {
	Factor   string // usually "time"
	From, To time.Time
}

// Options control a comparison. The zero value is usable.
type Options struct {
	Labels     []Label
	TimeRanges []TimeRange
	// Matchers label differences by the shape of their two sides: the
	// same lines or members in another order, moved addresses, a decimal
	// comma for a point.
	Matchers []Matcher

	// MaxTextLines bounds WriteText when it is given no bound; default 400.
	MaxTextLines int
	// MaxDetailLines bounds the detail lines kept per node; the rest are counted
	// in Node.Omitted. Default 80.
	MaxDetailLines int
	// Workers is the number of comparisons run at once; 0 means GOMAXPROCS.
	Workers int
	// MaxMemory bounds the decompressed archive content held in memory at
	// once; content beyond it is spooled to temporary files in TempDir, or
	// re-read from the archive. Default 1 GiB. Decoding one file or section as
	// text, strings, symbols or DWARF holds it in memory too, up to
	// MaxStructured per side and comparison, so peak memory is about
	// MaxMemory + 2·Workers·MaxStructured whatever the input size. The output
	// does not depend on MaxMemory.
	MaxMemory int64
	// MaxExpand bounds the bytes one compressed stream may decompress to, and
	// the bytes spooled to disk for one member. Default 64 GiB.
	MaxExpand int64
	// MaxMembers bounds the members of one archive or directory tree; default 1<<20.
	MaxMembers int
	// MaxDepth bounds how deep containers are opened inside containers; default 16.
	MaxDepth int
	// MaxStructured bounds the size of one file or section that is decoded as
	// text, strings or symbols rather than compared as bytes; default 256 MiB.
	MaxStructured int64
	// IgnoreDirMetadata skips mode, owner and modification time of files in
	// directory trees (not in archives).
	IgnoreDirMetadata bool
	// TempDir is where content that does not fit in memory is spooled; "" means
	// os.TempDir().
	TempDir string
	// Logger receives debug messages; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxTextLines <= 0 {
		o.MaxTextLines = 400
	}
	if o.MaxDetailLines <= 0 {
		o.MaxDetailLines = 80
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.MaxMemory <= 0 {
		o.MaxMemory = 1 << 30
	}
	if o.MaxExpand <= 0 {
		o.MaxExpand = 64 << 30
	}
	if o.MaxMembers <= 0 {
		o.MaxMembers = 1 << 20
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = 16
	}
	if o.MaxStructured <= 0 {
		o.MaxStructured = 256 << 20
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// A Kind says how a node differs.
type Kind string

// Kinds of difference.
const (
	Added    Kind = "added"    // only in B
	Removed  Kind = "removed"  // only in A
	Changed  Kind = "changed"  // content differs
	Metadata Kind = "metadata" // same content; mode, owner, time or placement differ
)

// A Node is one difference, with the differences inside it as children.
// Fields are in the order of their JSON names, which is the order WriteJSON
// writes them.
type Node struct {
	// Children are the differences inside this one, sorted by Path.
	Children []*Node `json:"children,omitempty"`
	// Details are human-readable lines: metadata changes, unified-diff hunks,
	// byte ranges in hex. At most Options.MaxDetailLines are kept.
	Details []string `json:"details,omitempty"`
	// Error is set when the content could not be parsed as Format; Details
	// then hold a byte-level diff.
	Error string `json:"error,omitempty"`
	// Format names what was compared: "directory", "tar.gz", "rlib", "elf",
	// "elf-section", "symbols", "functions", "dwarf", "rmeta", "text", "binary"...
	Format string `json:"format,omitempty"`
	Kind   Kind   `json:"kind"`
	// Labels are the factors whose perturbed values appear in this node's own
	// differing bytes, sorted.
	Labels []string `json:"labels,omitempty"`
	// Omitted counts detail lines that were left out.
	Omitted int `json:"omitted,omitempty"`
	// Path locates the difference: the artifact name, then members, sections
	// or synthetic parts ("[symbols]") joined with "/".
	Path    string `json:"path"`
	Summary string `json:"summary"`
}

// A Report is the result of a comparison: a tree of differences.
type Report struct {
	A, B string // the names compared, as given
	// Root is nil when A and B are identical.
	Root *Node

	maxText int
	marks   []labelValue // label values, highlighted in HTML
}

// Equal reports whether the inputs were identical.
func (r *Report) Equal() bool { return r.Root == nil }

// Factors returns the sorted union of the labels in the tree: the factors whose
// perturbed values were seen in differing bytes.
func (r *Report) Factors() []string {
	set := map[string]bool{}
	r.Walk(func(n *Node, _ int) bool {
		for _, l := range n.Labels {
			set[l] = true
		}
		return true
	})
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// Count returns the number of nodes in the tree.
func (r *Report) Count() int {
	n := 0
	r.Walk(func(*Node, int) bool { n++; return true })
	return n
}

// Walk calls fn for each node depth-first in order, with its depth from 0. When fn
// returns false, the node's children are skipped.
func (r *Report) Walk(fn func(n *Node, depth int) bool) {
	var walk func(n *Node, d int)
	walk = func(n *Node, d int) {
		if !fn(n, d) {
			return
		}
		for _, c := range n.Children {
			walk(c, d+1)
		}
	}
	if r.Root != nil {
		walk(r.Root, 0)
	}
}

// ErrNotComparable is wrapped by Files' error when one input is a directory and
// the other is not, or an input is neither a regular file nor a directory.
var ErrNotComparable = errors.New("not comparable")

// Files compares two files or two directories. The error is for inputs that
// cannot be read (it wraps fs.ErrNotExist for a missing one), a file compared
// with a directory, or a cancelled ctx; differences, including unparseable
// content, are in the Report.
func Files(ctx context.Context, a, b string, opts Options) (*Report, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	sb, err := os.Stat(b)
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	e := newEngine(opts)
	rep := &Report{A: a, B: b, maxText: e.opts.MaxTextLines, marks: e.lab.values}
	switch {
	case sa.IsDir() && sb.IsDir():
		rep.Root = e.diffDirs(ctx, ".", a, b, 0)
	case sa.IsDir() || sb.IsDir():
		return nil, fmt.Errorf("diff: %s and %s: a directory and a file are %w", a, b, ErrNotComparable)
	case !sa.Mode().IsRegular() || !sb.Mode().IsRegular():
		return nil, fmt.Errorf("diff: %s and %s: only regular files and directories are %w", a, b, ErrNotComparable)
	default:
		fa, err := os.Open(a)
		if err != nil {
			return nil, fmt.Errorf("diff: %w", err)
		}
		defer fa.Close()
		fb, err := os.Open(b)
		if err != nil {
			return nil, fmt.Errorf("diff: %w", err)
		}
		defer fb.Close()
		rep.Root = e.compare(ctx, filepath.Base(a), blob{fa, sa.Size()}, blob{fb, sb.Size()}, 0)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("diff: %w", context.Cause(ctx))
	}
	if e.fatal != nil {
		return nil, e.fatal
	}
	return rep, nil
}

// Readers compares two artifacts read through io.ReaderAt; name is the artifact's
// path, used as the root of the tree.
func Readers(ctx context.Context, name string, a io.ReaderAt, asize int64, b io.ReaderAt, bsize int64, opts Options) (*Report, error) {
	e := newEngine(opts)
	rep := &Report{A: name, B: name, maxText: e.opts.MaxTextLines, marks: e.lab.values}
	rep.Root = e.compare(ctx, name, blob{a, asize}, blob{b, bsize}, 0)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("diff: %w", context.Cause(ctx))
	}
	if e.fatal != nil {
		return nil, e.fatal
	}
	return rep, nil
}

// isNotExist reports whether err says a file is missing.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
