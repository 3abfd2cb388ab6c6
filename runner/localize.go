package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/reprobox/reprobox/diff"
	"github.com/reprobox/reprobox/diff/cargo"
	"github.com/reprobox/reprobox/internal/atomicfile"
	"github.com/reprobox/reprobox/internal/safefs"
)

// ErrNoIntermediates is returned by Localize when a build left no cargo
// target tree to compare.
var ErrNoIntermediates = errors.New("no cargo intermediate outputs")

// Bounds of what one build's tree may hold for localization; beyond them
// the tree is refused rather than read without end.
const (
	maxTreeEntries = 1 << 20
	maxTreeDepth   = 64
)

// Intermediates are a build's intermediate outputs (cargo's units under the
// target directory), hashed, read where the build left them or from a store
// of kept copies.
type Intermediates struct {
	Tree *cargo.Tree
	// Bytes is the size of the units' outputs.
	Bytes int64
	// root is the build tree being read in place, when files is nil.
	root string
	// files maps a tree path to its kept copy, when kept.
	files map[string]string
}

// open opens one output of the tree for reading, never following a link.
func (in *Intermediates) open(p string) (*os.File, error) {
	if in.files != nil {
		kept, ok := in.files[p]
		if !ok {
			return nil, fmt.Errorf("runner: %s was not kept: %w", p, os.ErrNotExist)
		}
		return os.Open(kept)
	}
	return openInRoot(in.root, p)
}

// openInRoot opens the regular file rel beneath root without following any
// symbolic link, inside or outside the tree (package safefs).
func openInRoot(root, rel string) (*os.File, error) {
	r, err := safefs.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	defer r.Close()
	f, _, err := r.Open(rel)
	if err != nil {
		return nil, fmt.Errorf("runner: open %s in the build tree: %w", rel, err)
	}
	return f, nil
}

// walkTree lists the regular files under root (paths relative to it, with
// slashes), reading directories through package safefs so that no link is
// followed.
func walkTree(ctx context.Context, root string) ([]string, error) {
	r, err := safefs.OpenRoot(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("runner: %s: %w", root, ErrNoIntermediates)
	}
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	defer r.Close()
	var out []string
	entries := 0
	var walk func(rel string, depth int) error
	walk = func(rel string, depth int) error {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		if depth > maxTreeDepth {
			return fmt.Errorf("runner: the build tree is deeper than %d directories at %s", maxTreeDepth, rel)
		}
		ents, err := r.ReadDir(rel)
		if err != nil {
			return fmt.Errorf("runner: list %s: %w", rel, err)
		}
		entries += len(ents)
		if entries > maxTreeEntries {
			return fmt.Errorf("runner: the build tree has more than %d entries", maxTreeEntries)
		}
		for _, e := range ents {
			p := path.Join(rel, e.Name())
			switch {
			case e.Type().IsDir():
				if err := walk(p, depth+1); err != nil {
					return err
				}
			case e.Type().IsRegular():
				out = append(out, p)
			}
			// Links, devices, fifos, sockets and overlay whiteouts are
			// not outputs.
		}
		return nil
	}
	if err := walk(".", 0); err != nil {
		return nil, err
	}
	for i := range out {
		out[i] = path.Clean(out[i])
	}
	return out, nil
}

// A keeper links (or, across file systems, copies) outputs into a
// content-addressed directory, so that units equal in several builds are kept
// once and a build tree never doubles on disk while it exists.
type keeper struct {
	dir string

	mu     sync.Mutex
	kept   map[string]int64 // sha256 → size
	bytes  int64            // distinct bytes kept
	copied int64            // bytes copied because a link was impossible
}

func newKeeper(dir string) *keeper { return &keeper{dir: dir, kept: map[string]int64{}} }

// keep stores f (whose content hashes to sum) and returns the kept path.
func (k *keeper) keep(f *os.File, sum string, size int64) (string, error) {
	dst := filepath.Join(k.dir, sum)
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.kept[sum]; ok {
		return dst, nil
	}
	if err := os.MkdirAll(k.dir, 0o700); err != nil {
		return "", err
	}
	err := unix.Linkat(int(f.Fd()), "", unix.AT_FDCWD, dst, unix.AT_EMPTY_PATH)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())), unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW)
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		// Another file system: copy from the open file.
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		err := atomicfile.Write(dst, 0o600, func(w io.Writer) error {
			_, err := io.Copy(w, f)
			return err
		})
		if err != nil {
			return "", err
		}
		k.copied += size
	}
	k.kept[sum] = size
	k.bytes += size
	return dst, nil
}

// scanIntermediates reads the cargo units under root (a build's tree) and
// hashes their outputs; with k, it keeps them so that they outlive the tree.
func scanIntermediates(ctx context.Context, root string, k *keeper) (*Intermediates, error) {
	paths, err := walkTree(ctx, root)
	if err != nil {
		return nil, err
	}
	r, err := safefs.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	defer r.Close()
	in := &Intermediates{root: root}
	if k != nil {
		in.files = map[string]string{}
	}
	var files []cargo.File
	fingerprints := map[string][]byte{}
	for _, p := range paths {
		role := cargo.Classify(p)
		if role == cargo.Ignore {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		f, _, err := r.Open(p)
		if err != nil {
			return nil, fmt.Errorf("runner: open %s in the build tree: %w", p, err)
		}
		err = func() error {
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			if role == cargo.Fingerprint {
				data, err := io.ReadAll(io.LimitReader(f, cargo.MaxFingerprintSize+1))
				if err != nil {
					return err
				}
				if len(data) > cargo.MaxFingerprintSize {
					return fmt.Errorf("runner: fingerprint %s is larger than %d bytes", p, cargo.MaxFingerprintSize)
				}
				fingerprints[p] = data
				files = append(files, cargo.File{Path: p, Size: st.Size()})
				return nil
			}
			h := sha256.New()
			n, err := io.Copy(h, f)
			if err != nil {
				return err
			}
			sum := hex.EncodeToString(h.Sum(nil))
			files = append(files, cargo.File{Path: p, Size: n, SHA256: sum})
			if k != nil {
				kept, err := k.keep(f, sum, n)
				if err != nil {
					return fmt.Errorf("runner: keep %s: %w", p, err)
				}
				in.files[p] = kept
			}
			return nil
		}()
		if err != nil {
			return nil, fmt.Errorf("runner: read intermediate %s: %w", p, err)
		}
	}
	in.Tree, err = cargo.Build(files, func(p string) ([]byte, error) {
		data, ok := fingerprints[p]
		if !ok {
			return nil, os.ErrNotExist
		}
		return data, nil
	})
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	if len(in.Tree.Units) == 0 {
		return nil, ErrNoIntermediates
	}
	in.Bytes = in.Tree.Bytes()
	return in, nil
}

// LocalizeOptions configure Localize.
type LocalizeOptions struct {
	// ArtifactA and ArtifactB are the SHA-256 of the artifact in each
	// build, to end the chain at the unit that made it; optional.
	ArtifactA, ArtifactB string
	// Labels, TimeRanges and Matchers label the evidence (see
	// diff.Options).
	Labels     []diff.Label
	TimeRanges []diff.TimeRange
	Matchers   []diff.Matcher
	// EvidenceLines bounds the evidence text; default 20.
	EvidenceLines int
}

// A Localization is where two builds first diverge, with the evidence there.
type Localization struct {
	*cargo.Divergence
	// Evidence is the structural diff of the first diverging unit's
	// differing outputs (a generated source, an rmeta, an rlib), bounded.
	Evidence string `json:"evidence,omitempty"`
	// Summary is Divergence's one-line form.
	Summary string `json:"summary"`
}

// Localize compares two builds' cargo intermediate outputs in place, in the
// builds' own directories (nothing is copied), and says which unit first
// differs, how the difference reaches the artifact, and shows it there. It
// must be called before the outcomes are removed. It returns
// ErrNoIntermediates when a build has no cargo target tree, and a nil
// Localization when every unit is the same.
func Localize(ctx context.Context, a, b *Outcome, opts LocalizeOptions) (*Localization, error) {
	ia, err := scanIntermediates(ctx, a.treeDir(), nil)
	if err != nil {
		return nil, err
	}
	ib, err := scanIntermediates(ctx, b.treeDir(), nil)
	if err != nil {
		return nil, err
	}
	return LocalizeIntermediates(ctx, ia, ib, opts)
}

// LocalizeIntermediates is Localize for intermediates already read.
func LocalizeIntermediates(ctx context.Context, a, b *Intermediates, opts LocalizeOptions) (*Localization, error) {
	d := cargo.Compare(a.Tree, b.Tree, opts.ArtifactA, opts.ArtifactB)
	if d == nil {
		return nil, nil
	}
	if opts.EvidenceLines <= 0 {
		opts.EvidenceLines = 20
	}
	l := &Localization{Divergence: d, Summary: d.String()}
	var buf bytes.Buffer
	left := opts.EvidenceLines
	dopts := diff.Options{Labels: opts.Labels, TimeRanges: opts.TimeRanges, Matchers: opts.Matchers, Workers: 1}
	for _, c := range d.First[0].Files {
		if left <= 1 {
			break
		}
		if c.Kind != "changed" {
			fmt.Fprintf(&buf, "%s: %s\n", c.Describe(), c.Kind)
			left--
			continue
		}
		text, err := diffIntermediate(ctx, a, b, c, dopts, left)
		if err != nil {
			return nil, err
		}
		buf.WriteString(text)
		left -= bytes.Count([]byte(text), []byte("\n"))
	}
	l.Evidence = buf.String()
	return l, nil
}

// diffIntermediate diffs one changed output of the first diverging unit.
func diffIntermediate(ctx context.Context, a, b *Intermediates, c cargo.FileChange, opts diff.Options, lines int) (string, error) {
	fa, err := a.open(c.A)
	if err != nil {
		return "", err
	}
	defer fa.Close()
	fb, err := b.open(c.B)
	if err != nil {
		return "", err
	}
	defer fb.Close()
	sa, err := fa.Stat()
	if err != nil {
		return "", err
	}
	sb, err := fb.Stat()
	if err != nil {
		return "", err
	}
	rep, err := diff.Readers(ctx, c.Describe(), fa, sa.Size(), fb, sb.Size(), opts)
	if err != nil {
		return "", fmt.Errorf("runner: diff %s: %w", c.Name, err)
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf, lines); err != nil {
		return "", err
	}
	return buf.String(), nil
}
