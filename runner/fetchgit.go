package runner

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/reprobox/reprobox/internal/cargolock"
	"github.com/reprobox/reprobox/internal/safefs"
)

// Git dependencies. A package of Cargo.lock whose source is
// git+URL?REF#COMMIT is fetched on the host with the git binary (no shell, no
// hooks, no prompt), once per URL and commit, into GitCache/KEY, where KEY is
// the sha256 of URL and commit: the raw commit object (GitCache/KEY/commit),
// the tree at exactly that commit, written blob by blob from git's object
// database (GitCache/KEY/tree; no checkout filters, no attributes), and the
// submodule entries of the tree (GitCache/KEY/gitlinks). The commit hash pins
// it all: on every use reprobox hashes the files again the way git hashes its
// objects, rebuilds the tree's hash, checks that the commit object names that
// tree and that the commit object's own SHA-1 is the locked commit. An entry
// that fails this (changed, truncated, extra files) is removed and fetched
// again. The package is then found in the tree as cargo finds packages in a
// git source (every Cargo.toml whose [package] has the locked name and
// version) and vendored into each snapshot like a registry crate.
//
// Submodules are not fetched: a package whose directory holds a submodule is
// refused (cargo would check it out). A package whose manifest inherits
// fields from its workspace ({ workspace = true }) is refused too: cargo
// vendor normalizes such manifests, reprobox does not yet.

// gitCache is where git dependencies are cached: beside the crate cache.
func (r *Runner) gitCache() string {
	return filepath.Join(filepath.Dir(r.CrateCache), "git")
}

// gitEntry is one fetched repository at one commit in the cache.
type gitEntry struct {
	src cargolock.GitSource
	dir string // GitCache/KEY
}

func (e gitEntry) tree() string { return filepath.Join(e.dir, "tree") }

func gitKey(src cargolock.GitSource) string {
	h := sha256.Sum256([]byte(src.URL + "\n" + src.Commit))
	return hex.EncodeToString(h[:16])
}

// gitCmd runs git with explicit arguments: no hooks, no terminal prompt, no
// pager; stdout returned, stderr in the error.
func gitCmd(ctx context.Context, dir string, args ...string) ([]byte, error) {
	full := append([]string{"-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "protocol.ext.allow=never"}, args...)
	cmd := exec.CommandContext(ctx, "git", full...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_PAGER=cat", "GIT_ASKPASS=", "SSH_ASKPASS=", "GIT_SSH_COMMAND=ssh -o BatchMode=yes")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[:2000] + "…"
		}
		return out, fmt.Errorf("git %s: %w: %s", args[0], err, msg)
	}
	return out, nil
}

// ensureGit makes a verified cache entry for src present: a cached entry is
// verified again and fetched anew when it fails.
func (f *fetcher) ensureGit(ctx context.Context, p cargolock.Package, src cargolock.GitSource) (gitEntry, error) {
	e := gitEntry{src: src, dir: filepath.Join(f.r.gitCache(), gitKey(src))}
	if _, err := os.Lstat(e.dir); err == nil {
		err := verifyGitEntry(e)
		if err == nil {
			return e, nil
		}
		f.r.progressf("reprobox: the cached checkout of %s at %s (%s) was changed: %v: fetching it again\n", src.URL, src.Commit, e.dir, err)
		if err := removeAll(e.dir); err != nil {
			return e, fmt.Errorf("runner: git cache: %w", err)
		}
	}
	if f.offline {
		return e, fmt.Errorf("%w: crate %s %s (git %s at %s) is not in the git cache %s, and the cargo config sets net.offline (or CARGO_NET_OFFLINE): fetch it once with the network allowed",
			ErrConfig, p.Name, p.Version, src.URL, src.Commit, f.r.gitCache())
	}
	if _, err := exec.LookPath("git"); err != nil {
		return e, fmt.Errorf("%w: crate %s %s is a git dependency (%s), and git is not on PATH: install git", ErrConfig, p.Name, p.Version, src.URL)
	}
	if err := os.MkdirAll(f.r.gitCache(), 0o755); err != nil {
		return e, fmt.Errorf("runner: git cache: %w", err)
	}
	tmp, err := os.MkdirTemp(f.r.gitCache(), ".fetch-*")
	if err != nil {
		return e, fmt.Errorf("runner: git cache: %w", err)
	}
	defer removeAll(tmp)
	db := filepath.Join(tmp, "db.git")
	if _, err := gitCmd(ctx, tmp, "init", "--quiet", "--bare", db); err != nil {
		return e, fmt.Errorf("runner: git cache: %w", err)
	}
	// The commit itself first (cargo does the same for a full hash); a
	// server that refuses to serve a commit by its hash gets the usual
	// fetch of its branches and tags.
	_, err = gitCmd(ctx, db, "fetch", "--quiet", "--no-tags", "--no-recurse-submodules", "--", src.URL, src.Commit)
	if err != nil {
		if _, err2 := gitCmd(ctx, db, "fetch", "--quiet", "--no-tags", "--no-recurse-submodules", "--", src.URL,
			"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"); err2 != nil {
			if ctx.Err() != nil {
				return e, context.Cause(ctx)
			}
			return e, fmt.Errorf("%w: crate %s %s: git repository %s unreachable: %w", ErrFetch, p.Name, p.Version, src.URL, err2)
		}
	}
	if typ, err := gitCmd(ctx, db, "cat-file", "-t", src.Commit); err != nil || strings.TrimSpace(string(typ)) != "commit" {
		return e, fmt.Errorf("%w: crate %s %s: the git repository %s has no commit %s, which Cargo.lock pins (a rewritten or force-pushed history?): nothing was built: run cargo update -p %s to lock a commit the repository has, or restore the commit",
			ErrConfig, p.Name, p.Version, src.URL, src.Commit, p.Name)
	}
	if err := exportGit(ctx, db, src.Commit, filepath.Join(tmp, "entry")); err != nil {
		return e, fmt.Errorf("runner: crate %s %s: git %s at %s: %w", p.Name, p.Version, src.URL, src.Commit, err)
	}
	if err := verifyGitEntry(gitEntry{src: src, dir: filepath.Join(tmp, "entry")}); err != nil {
		return e, fmt.Errorf("runner: crate %s %s: git %s at %s: the export does not match the commit: %w", p.Name, p.Version, src.URL, src.Commit, err)
	}
	if err := os.Rename(filepath.Join(tmp, "entry"), e.dir); err != nil {
		// Another reprobox may have put the same entry there meanwhile.
		if verr := verifyGitEntry(e); verr != nil {
			return e, fmt.Errorf("runner: git cache: %w", err)
		}
		return e, nil
	}
	f.mu.Lock()
	f.downloaded++
	f.mu.Unlock()
	return e, nil
}

// removeAll removes a tree whose directories may have been made read-only.
func removeAll(dir string) error {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// exportGit writes the commit object and the tree of commit from the bare
// repository db into out (out/commit, out/tree, out/gitlinks), blob by blob,
// bytes as git stores them.
func exportGit(ctx context.Context, db, commit, out string) error {
	raw, err := gitCmd(ctx, db, "cat-file", "commit", commit)
	if err != nil {
		return err
	}
	tree := filepath.Join(out, "tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "commit"), raw, 0o444); err != nil {
		return err
	}
	list, err := gitCmd(ctx, db, "ls-tree", "-r", "-z", "--full-tree", commit)
	if err != nil {
		return err
	}
	// The repository is the dependency author's: a hand-made tree object can
	// hold a link and a path through it ("a" -> /etc and "a/x"). Every write
	// goes through safefs, never through a link.
	root, err := safefs.OpenRoot(tree)
	if err != nil {
		return err
	}
	defer root.Close()
	type blob struct{ mode, oid, path string }
	var blobs []blob
	var gitlinks bytes.Buffer
	for _, rec := range strings.Split(strings.TrimSuffix(string(list), "\x00"), "\x00") {
		if rec == "" {
			continue
		}
		meta, p, ok := strings.Cut(rec, "\t")
		fields := strings.Fields(meta)
		if !ok || len(fields) != 3 || !fs.ValidPath(p) || slices.Contains(strings.Split(p, "/"), ".git") {
			return fmt.Errorf("ls-tree entry %q is not a plain path", rec)
		}
		switch fields[0] {
		case "100644", "100755", "120000":
			blobs = append(blobs, blob{fields[0], fields[2], p})
		case "160000":
			// An empty directory, as git checks a submodule out before
			// its update.
			if err := root.MkdirAll(p, 0o755); err != nil {
				return err
			}
			fmt.Fprintf(&gitlinks, "%s %s\x00", fields[2], p)
		default:
			return fmt.Errorf("ls-tree entry %q has mode %s", rec, fields[0])
		}
	}
	if err := os.WriteFile(filepath.Join(out, "gitlinks"), gitlinks.Bytes(), 0o444); err != nil {
		return err
	}
	// One cat-file --batch for every blob.
	var in bytes.Buffer
	for _, b := range blobs {
		in.WriteString(b.oid + "\n")
	}
	cmd := exec.CommandContext(ctx, "git", "-c", "core.hooksPath=/dev/null", "cat-file", "--batch")
	cmd.Dir = db
	cmd.Stdin = &in
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	rd := bufio.NewReader(stdout)
	werr := func() error {
		for _, b := range blobs {
			hdr, err := rd.ReadString('\n')
			if err != nil {
				return fmt.Errorf("cat-file: %w", err)
			}
			f := strings.Fields(hdr)
			if len(f) != 3 || f[0] != b.oid || f[1] != "blob" {
				return fmt.Errorf("cat-file: %q for blob %s", strings.TrimSpace(hdr), b.oid)
			}
			n, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				return fmt.Errorf("cat-file: %q", hdr)
			}
			if dir := path.Dir(b.path); dir != "." {
				if err := root.MkdirAll(dir, 0o755); err != nil {
					return err
				}
			}
			if b.mode == "120000" {
				target := make([]byte, n)
				if _, err := io.ReadFull(rd, target); err != nil {
					return err
				}
				if err := root.Symlink(string(target), b.path); err != nil {
					return err
				}
			} else {
				perm := fs.FileMode(0o444)
				if b.mode == "100755" {
					perm = 0o555
				}
				w, err := root.Create(b.path, perm)
				if err != nil {
					return err
				}
				_, err = io.CopyN(w, rd, n)
				if cerr := w.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return err
				}
			}
			if _, err := rd.Discard(1); err != nil { // the newline after the content
				return err
			}
		}
		return nil
	}()
	io.Copy(io.Discard, rd)
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("git cat-file: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return werr
}

// verifyGitEntry checks a cache entry against its locked commit: the SHA-1
// of the commit object is the commit, and the tree it names is the tree
// rebuilt from the files (and gitlinks) of the entry, hashed as git hashes
// objects.
func verifyGitEntry(e gitEntry) error {
	raw, err := os.ReadFile(filepath.Join(e.dir, "commit"))
	if err != nil {
		return err
	}
	if got := gitHash("commit", raw); got != e.src.Commit {
		return fmt.Errorf("the commit object hashes to %s, not %s", got, e.src.Commit)
	}
	treeLine, _, _ := strings.Cut(string(raw), "\n")
	want, ok := strings.CutPrefix(treeLine, "tree ")
	if !ok {
		return errors.New("the commit object names no tree")
	}
	links, err := os.ReadFile(filepath.Join(e.dir, "gitlinks"))
	if err != nil {
		return err
	}
	gitlinks := map[string]string{} // path → commit
	for _, rec := range strings.Split(strings.TrimSuffix(string(links), "\x00"), "\x00") {
		if oid, p, ok := strings.Cut(rec, " "); ok {
			gitlinks[p] = oid
		}
	}
	got, err := gitTreeHash(e.tree(), "", gitlinks)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("the files hash to tree %s, but the commit names tree %s", got, want)
	}
	return nil
}

// gitHash is git's SHA-1 object name of an object of type typ.
func gitHash(typ string, data []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "%s %d\x00", typ, len(data))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// gitTreeHash is the git tree hash of the directory root/rel ("" for the
// empty tree when a directory holds nothing git would store).
func gitTreeHash(root, rel string, gitlinks map[string]string) (string, error) {
	ents, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return "", err
	}
	type entry struct {
		mode, name string
		oid        []byte
		dir        bool
	}
	var es []entry
	for _, d := range ents {
		p := path.Join(rel, d.Name())
		full := filepath.Join(root, filepath.FromSlash(p))
		var mode, oid string
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(full)
			if err != nil {
				return "", err
			}
			mode, oid = "120000", gitHash("blob", []byte(target))
		case t.IsDir():
			sub, err := gitTreeHash(root, p, gitlinks)
			if err != nil {
				return "", err
			}
			if sub == "" {
				if oid, ok := gitlinks[p]; ok {
					es = append(es, entry{mode: "160000", name: d.Name(), oid: mustHex(oid)})
				}
				continue // git stores no empty directory
			}
			mode, oid = "40000", sub
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return "", err
			}
			data, err := os.ReadFile(full)
			if err != nil {
				return "", err
			}
			mode = "100644"
			if info.Mode()&0o111 != 0 {
				mode = "100755"
			}
			oid = gitHash("blob", data)
		default:
			return "", fmt.Errorf("%s is a %s", p, safefs.TypeName(t))
		}
		es = append(es, entry{mode: mode, name: d.Name(), oid: mustHex(oid), dir: mode == "40000"})
	}
	if len(es) == 0 {
		return "", nil
	}
	// Git sorts tree entries by name, a directory's name as if it ended in /.
	key := func(e entry) string {
		if e.dir {
			return e.name + "/"
		}
		return e.name
	}
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(key(a), key(b)) })
	var buf bytes.Buffer
	for _, e := range es {
		fmt.Fprintf(&buf, "%s %s\x00", e.mode, e.name)
		buf.Write(e.oid)
	}
	return gitHash("tree", buf.Bytes()), nil
}

func mustHex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}

// gitPackage finds the directory (relative to the tree, slash-separated) of
// the package name at version in a fetched tree, as cargo finds packages in a
// git source: every Cargo.toml whose [package] names it (target directories
// and hidden directories skipped).
func gitPackage(e gitEntry, name, version string) (string, error) {
	var found []string
	var inherits bool
	root := e.tree()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "target") {
			return filepath.SkipDir
		}
		if d.Name() != "Cargo.toml" || !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var m struct {
			Package map[string]any `toml:"package"`
		}
		if _, err := toml.Decode(string(data), &m); err != nil || m.Package == nil {
			return nil // cargo skips what it cannot read, too
		}
		if m.Package["name"] != name {
			return nil
		}
		v := m.Package["version"]
		if vm, ok := v.(map[string]any); ok && vm["workspace"] == true {
			inherits = true
			return nil
		}
		if v != version && !(v == nil && version == "0.0.0") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		found = append(found, filepath.ToSlash(rel))
		if bytes.Contains(data, []byte("workspace = true")) || bytes.Contains(data, []byte("workspace=true")) {
			inherits = true
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("runner: git %s at %s: %w", e.src.URL, e.src.Commit, err)
	}
	if inherits {
		return "", fmt.Errorf("%w: crate %s %s (git %s at %s) inherits fields from its workspace ({ workspace = true }), which reprobox does not normalize yet: vendor it with cargo vendor (and the [source] lines it prints): %w",
			ErrConfig, name, version, e.src.URL, e.src.Commit, errors.ErrUnsupported)
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w: crate %s %s: no Cargo.toml in git %s at %s names that package: is Cargo.lock out of date?", ErrConfig, name, version, e.src.URL, e.src.Commit)
	case 1:
		links, err := os.ReadFile(filepath.Join(e.dir, "gitlinks"))
		if err != nil {
			return "", fmt.Errorf("runner: git cache: %w", err)
		}
		for _, rec := range strings.Split(string(links), "\x00") {
			if _, p, ok := strings.Cut(rec, " "); ok && (found[0] == "." || strings.HasPrefix(p, found[0]+"/")) {
				return "", fmt.Errorf("%w: crate %s %s (git %s at %s) holds the git submodule %s, and reprobox does not fetch submodules: vendor it with cargo vendor (and the [source] lines it prints): %w",
					ErrConfig, name, version, e.src.URL, e.src.Commit, p, errors.ErrUnsupported)
			}
		}
		return found[0], nil
	}
	slices.Sort(found)
	return "", fmt.Errorf("%w: crate %s %s: git %s at %s holds that package twice (%s), which cargo refuses too", ErrConfig, name, version, e.src.URL, e.src.Commit, strings.Join(found, ", "))
}

// copyGitPackage copies the package directory of c from the git cache into
// root at c.dir (files read-only for the build user, times clamped) with a
// .cargo-checksum.json as cargo vendor writes for a git source (no package
// checksum: the commit pins it). It refuses symbolic links and submodules
// inside the package. It returns the directories it made.
func copyGitPackage(root *safefs.Root, c vendoredCrate, clamp time.Time) ([]string, error) {
	fail := func(err error) ([]string, error) {
		return nil, fmt.Errorf("runner: crate %s %s (git %s at %s): %w", c.Name, c.Version, c.git.src.URL, c.git.src.Commit, err)
	}
	src := filepath.Join(c.git.tree(), filepath.FromSlash(c.gitPath))
	var dirs []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := path.Join(c.dir, filepath.ToSlash(rel))
		switch t := d.Type(); {
		case t.IsDir():
			if rel != "." && (d.Name() == "target" || d.Name() == ".git") {
				return filepath.SkipDir
			}
			if _, err := os.Lstat(filepath.Join(p, "Cargo.toml")); rel != "." && err == nil {
				return filepath.SkipDir // another package, as cargo packages it
			}
			if err := root.MkdirAll(target, 0o755); err != nil {
				return err
			}
			dirs = append(dirs, target)
		case t.IsRegular():
			if rel == ".cargo-checksum.json" {
				return nil // reprobox writes its own
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			perm := fs.FileMode(0o644)
			if info.Mode()&0o111 != 0 {
				perm = 0o755
			}
			in, _, err := safefs.OpenFile(p)
			if err != nil {
				return err
			}
			out, err := root.Create(target, perm)
			if err != nil {
				in.Close()
				return err
			}
			_, err = io.Copy(out, in)
			in.Close()
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if err := root.Lchtimes(target, clamp, clamp); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: %s in the package is a %s, which reprobox does not vendor from a git dependency", ErrConfig, filepath.ToSlash(rel), safefs.TypeName(t))
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	if err := writeCargoChecksum(root, c.dir, "", clamp); err != nil {
		return fail(err)
	}
	return dirs, nil
}
