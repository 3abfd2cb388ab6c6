package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tamperTarGz rewrites a tar.gz with one byte of member changed: old is
// replaced by repl (same length) inside that member, every header kept.
func tamperTarGz(t *testing.T, data []byte, member, old, repl string) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == member {
			if !bytes.Contains(body, []byte(old)) {
				t.Fatalf("%s does not contain %q", member, old)
			}
			body = bytes.Replace(body, []byte(old), []byte(repl), 1)
			found = true
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	zw.Close()
	if !found {
		t.Fatalf("no member %s", member)
	}
	return out.Bytes()
}

type snapshot map[string]string // path → mtime and sha256

func snap(t *testing.T, dir string) snapshot {
	t.Helper()
	s := snapshot{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		st, _ := os.Stat(p)
		data, _ := os.ReadFile(p)
		s[p] = fmt.Sprintf("%s %v %s", st.ModTime().UTC().Format(time.RFC3339Nano), st.Mode(), sha256hex(data))
		return nil
	})
	return s
}

func (s snapshot) same(t *testing.T, dir string) {
	t.Helper()
	now := snap(t, dir)
	if len(now) != len(s) {
		t.Errorf("files in %s changed: %d before, %d after", dir, len(s), len(now))
	}
	for p, v := range s {
		if now[p] != v {
			t.Errorf("published file %s changed: %s -> %s", p, v, now[p])
		}
	}
}

// TestVerify rebuilds the dist fixture (a tarball holding a binary) against
// every form of published input, for real in the default image: a directory,
// SHA256SUMS with and without the files beside it, a channel manifest; a
// tarball with one byte changed inside the binary (MISMATCH with the diff
// naming member and section); a tarball that is not what its manifest says
// (INVALID); published-but-not-built and built-but-not-published (MISSING).
// Published files are read-only and their bytes and times unchanged.
func TestVerify(t *testing.T) {
	dataDir, image := needImage(t)
	tmp := t.TempDir()
	// The "publisher": one build of the fixture.
	pubBuild := filepath.Join(tmp, "pubbuild")
	if r := reprobox(t, fixture("dist"), "build", "--image", image, "--data-dir", dataDir, "--out", pubBuild); r.code != 0 {
		t.Fatalf("publisher build: exit %d\n%s", r.code, r.stderr)
	}
	good, err := os.ReadFile(filepath.Join(pubBuild, "artifacts", "dist.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	bad := tamperTarGz(t, good, "stage/dist", "dist fixture", "dist fixturE")
	sumGood, sumBad := sha256hex(good), sha256hex(bad)

	rel := filepath.Join(tmp, "release")
	writeFile(t, filepath.Join(rel, "dir", "dist.tar.gz"), good)
	writeFile(t, filepath.Join(rel, "sums", "dist.tar.gz"), good)
	writeFile(t, filepath.Join(rel, "sums", "SHA256SUMS"), []byte(sumGood+" *dist.tar.gz\n"))
	writeFile(t, filepath.Join(rel, "sumsonly", "SHA256SUMS"), []byte(sumGood+"  dist.tar.gz\n"))
	manifest := fmt.Sprintf("manifest-version = \"2\"\ndate = \"2023-11-14\"\n[pkg.dist.target.x86_64-unknown-linux-gnu]\navailable = true\nurl = \"https://example.invalid/dist/2023-11-14/dist.tar.gz\"\nhash = \"%s\"\n", sumGood)
	writeFile(t, filepath.Join(rel, "channel", "channel-rust-test.toml"), []byte(manifest))
	writeFile(t, filepath.Join(rel, "channel", "dist.tar.gz"), good)
	writeFile(t, filepath.Join(rel, "tampered", "dist.tar.gz"), bad)
	writeFile(t, filepath.Join(rel, "tampered", "SHA256SUMS"), []byte(sumBad+"  dist.tar.gz\n"))
	writeFile(t, filepath.Join(rel, "corrupt", "dist.tar.gz"), bad)
	writeFile(t, filepath.Join(rel, "corrupt", "SHA256SUMS"), []byte(sumGood+"  dist.tar.gz\n"))
	writeFile(t, filepath.Join(rel, "extra", "SHA256SUMS"), []byte(sumGood+"  dist.tar.gz\n"+sumBad+"  dist-aarch64.tar.gz\n"))
	// Published files are read-only with an old mtime: verify must not touch them.
	old := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	filepath.WalkDir(rel, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			os.Chtimes(p, old, old)
			os.Chmod(p, 0o444)
		}
		return err
	})
	before := snap(t, rel)
	defer before.same(t, rel)

	verify := func(t *testing.T, where string, extra ...string) (result, map[string]any) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "out")
		args := append([]string{"verify", "--image", image, "--data-dir", dataDir, "--out", out, "--published", where, "--progress", "0"}, extra...)
		r := reprobox(t, fixture("dist"), args...)
		var rep map[string]any
		if data, err := os.ReadFile(filepath.Join(out, "verify.json")); err == nil {
			json.Unmarshal(data, &rep)
		}
		return r, rep
	}
	status := func(rep map[string]any) map[string]string {
		m := map[string]string{}
		if rep == nil {
			return m
		}
		for _, a := range rep["artifacts"].([]any) {
			a := a.(map[string]any)
			m[a["name"].(string)] = a["status"].(string)
		}
		return m
	}

	for _, tt := range []struct{ name, where, form string }{
		{"directory", filepath.Join(rel, "dir"), "directory"},
		{"SHA256SUMS with files", filepath.Join(rel, "sums", "SHA256SUMS"), "sha256sums"},
		{"SHA256SUMS alone", filepath.Join(rel, "sumsonly", "SHA256SUMS"), "sha256sums"},
		{"channel manifest", filepath.Join(rel, "channel", "channel-rust-test.toml"), "channel-manifest"},
	} {
		t.Run("match/"+tt.name, func(t *testing.T) {
			r, rep := verify(t, tt.where)
			if r.code != 0 || status(rep)["dist.tar.gz"] != "MATCH" || rep["published_form"] != tt.form {
				t.Fatalf("exit %d, report %v\nstdout:\n%s\nstderr:\n%s", r.code, rep, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, "MATCH     dist.tar.gz") || !strings.Contains(r.stdout, "VERIFIED:") {
				t.Errorf("stdout:\n%s", r.stdout)
			}
		})
	}

	t.Run("mismatch", func(t *testing.T) {
		r, rep := verify(t, filepath.Join(rel, "tampered", "SHA256SUMS"))
		if r.code != 1 || status(rep)["dist.tar.gz"] != "MISMATCH" {
			t.Fatalf("exit %d, report %v\n%s\n%s", r.code, rep, r.stdout, r.stderr)
		}
		// The diff names the tarball member and the ELF section the byte is in.
		for _, want := range []string{"MISMATCH  dist.tar.gz", "published " + sumBad, "stage/dist", ".rodata", "NOT VERIFIED: 1 MISMATCH"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
			}
		}
	})

	t.Run("published file does not match its manifest", func(t *testing.T) {
		r, rep := verify(t, filepath.Join(rel, "corrupt", "SHA256SUMS"))
		if r.code != 1 || status(rep)["dist.tar.gz"] != "INVALID" {
			t.Fatalf("exit %d, report %v\n%s", r.code, rep, r.stdout)
		}
		want := "published file " + filepath.Join(rel, "corrupt", "dist.tar.gz") + " does not match its manifest"
		if !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "the rebuild matches the manifest's digest") || strings.Contains(r.stdout, "MISMATCH") {
			t.Errorf("stdout does not name the corrupt published file (%q):\n%s", want, r.stdout)
		}
	})

	t.Run("missing both ways", func(t *testing.T) {
		r, rep := verify(t, filepath.Join(rel, "extra", "SHA256SUMS"), "--artifact", "dist.tar.gz", "--artifact", "README")
		st := status(rep)
		if r.code != 1 || st["dist.tar.gz"] != "MATCH" || st["dist-aarch64.tar.gz"] != "MISSING" || st["README"] != "MISSING" {
			t.Fatalf("exit %d, statuses %v\n%s\n%s", r.code, st, r.stdout, r.stderr)
		}
		for _, want := range []string{"published but not built", "built but not published"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
			}
		}
	})

	t.Run("only", func(t *testing.T) {
		// The release lists more than this rebuild makes: --only narrows both sides.
		r, rep := verify(t, filepath.Join(rel, "extra", "SHA256SUMS"), "--artifact", "dist.tar.gz", "--artifact", "README", "--only", "dist.tar*")
		if st := status(rep); r.code != 0 || len(st) != 1 || st["dist.tar.gz"] != "MATCH" {
			t.Fatalf("exit %d, statuses %v\n%s\n%s", r.code, st, r.stdout, r.stderr)
		}
	})

	t.Run("repeats", func(t *testing.T) {
		r, rep := verify(t, filepath.Join(rel, "sums", "SHA256SUMS"), "--repeats", "1")
		if r.code != 0 || rep["builds"] != float64(2) {
			t.Fatalf("exit %d builds %v\n%s", r.code, rep["builds"], r.stderr)
		}
	})

	t.Run("nondeterministic and failed builds", func(t *testing.T) {
		where := filepath.Join(tmp, "random")
		writeFile(t, filepath.Join(where, "rand.bin"), []byte("published bytes\n"))
		r, rep := verify(t, where, "--repeats", "1", "--artifact", "rand.bin", "--", "sh", "-c", "head -c 16 /dev/urandom > rand.bin")
		if r.code != 1 || status(rep)["rand.bin"] != "NONDETERMINISTIC" || rep["builds"] != float64(2) {
			t.Fatalf("exit %d, report %v\n%s\n%s", r.code, rep, r.stdout, r.stderr)
		}
		r, _ = verify(t, where, "--", "sh", "-c", "echo 'error: broken' >&2; exit 3")
		if r.code != 1 || !strings.Contains(r.stderr, "the rebuild failed") || !strings.Contains(r.stderr, "| error: broken") {
			t.Fatalf("failed build: exit %d\n%s", r.code, r.stderr)
		}
	})

	t.Run("signed attestations and threshold", func(t *testing.T) {
		keys := t.TempDir()
		for _, k := range []string{"one", "two", "stranger"} {
			if r := reprobox(t, ".", "key", "generate", "--out", filepath.Join(keys, k)); r.code != 0 {
				t.Fatalf("key generate: %d %s", r.code, r.stderr)
			}
		}
		att := filepath.Join(tmp, "attestations")
		os.Mkdir(att, 0o755)
		sign := func(key, where, dst string) {
			r, _ := verify(t, where, "--sign", filepath.Join(keys, key+".key"), "--attestation", filepath.Join(att, dst))
			if r.code != 0 && r.code != 1 {
				t.Fatalf("verify --sign: %d %s", r.code, r.stderr)
			}
		}
		sign("one", filepath.Join(rel, "sums", "SHA256SUMS"), "one.intoto.jsonl")
		sign("one", filepath.Join(rel, "dir"), "one-again.intoto.jsonl")
		// The provenance (line 1) does not depend on the published input and
		// has no times: two rebuilds signed with one key give the same bytes.
		p1, _ := os.ReadFile(filepath.Join(att, "one.intoto.jsonl"))
		p2, _ := os.ReadFile(filepath.Join(att, "one-again.intoto.jsonl"))
		if l1, l2 := strings.SplitN(string(p1), "\n", 2)[0], strings.SplitN(string(p2), "\n", 2)[0]; l1 != l2 || l1 == "" {
			t.Errorf("two signed provenances of the same rebuild differ:\n%s\n%s", l1, l2)
		}
		trusted := filepath.Join(keys, "trusted.pem")
		a, _ := os.ReadFile(filepath.Join(keys, "one.pub"))
		b, _ := os.ReadFile(filepath.Join(keys, "two.pub"))
		writeFile(t, trusted, append(a, b...))
		check := func(threshold string) result {
			return reprobox(t, ".", "verify", "--attestations", att, "--trusted-keys", trusted, "--threshold", threshold,
				"--published", filepath.Join(rel, "sums", "SHA256SUMS"))
		}
		// One builder, twice: it counts once.
		if r := check("2"); r.code != 1 || !strings.Contains(r.stdout, "1 of 2 builder(s)") {
			t.Fatalf("same key twice passed threshold 2: exit %d\n%s", r.code, r.stdout)
		}
		if r := check("1"); r.code != 0 {
			t.Fatalf("threshold 1: exit %d\n%s", r.code, r.stdout)
		}
		// An untrusted rebuilder and a forged copy do not count.
		sign("stranger", filepath.Join(rel, "sums", "SHA256SUMS"), "stranger.intoto.jsonl")
		data, _ := os.ReadFile(filepath.Join(att, "one.intoto.jsonl"))
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		var env map[string]any
		json.Unmarshal([]byte(lines[1]), &env)
		payload, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
		env["payload"] = base64.StdEncoding.EncodeToString([]byte(strings.ReplaceAll(string(payload), sumGood, sumBad)))
		forged, _ := json.Marshal(env)
		writeFile(t, filepath.Join(att, "forged.json"), forged)
		r := check("2")
		for _, want := range []string{"forged.json:1: the signature of trusted key", "stranger.intoto.jsonl:1: signed only by untrusted key", "1 of 2 builder(s)"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
			}
		}
		if r.code != 1 {
			t.Fatalf("threshold 2 passed with one trusted builder: exit %d\n%s", r.code, r.stdout)
		}
		// A second trusted builder makes two.
		sign("two", filepath.Join(rel, "channel", "channel-rust-test.toml"), "two.intoto.jsonl")
		if r := check("2"); r.code != 0 || !strings.Contains(r.stdout, "2 of 2 builder(s)") {
			t.Fatalf("two trusted builders did not pass threshold 2: exit %d\n%s", r.code, r.stdout)
		}
		// A verify of the tampered release signs a FAILED summary for its digest.
		sign("two", filepath.Join(rel, "tampered", "SHA256SUMS"), "two-tampered.intoto.jsonl")
		r = reprobox(t, ".", "verify", "--attestations", att, "--trusted-keys", trusted, "--published", filepath.Join(rel, "tampered", "SHA256SUMS"))
		if r.code != 1 || !strings.Contains(r.stdout, "NOT reproduced by key") {
			t.Fatalf("tampered release: exit %d\n%s", r.code, r.stdout)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, args := range [][]string{
			{"--published", filepath.Join(rel, "nothing-here")},
			{"--published", filepath.Join(rel, "dir", "dist.tar.gz")}, // not a SHA256SUMS
			{"--published", filepath.Join(rel, "sums", "SHA256SUMS"), "--sign", filepath.Join(rel, "sums", "SHA256SUMS")},
			{"--published", filepath.Join(rel, "dir"), "--threshold", "2"},
		} {
			r, _ := verify(t, args[1], args[2:]...)
			if r.code != 2 {
				t.Errorf("%v: exit %d, want 2\n%s", args, r.code, r.stderr)
			}
		}
		if r := reprobox(t, ".", "verify"); r.code != 2 || !strings.Contains(r.stderr, "--published") {
			t.Errorf("no --published: exit %d %s", r.code, r.stderr)
		}
		// --out inside the published directory is refused before anything is written.
		r := reprobox(t, fixture("dist"), "verify", "--image", image, "--data-dir", dataDir, "--published", filepath.Join(rel, "dir"), "--out", filepath.Join(rel, "dir", "out"))
		if r.code != 2 || !strings.Contains(r.stderr, "overlaps the published files") {
			t.Errorf("--out in the published dir: exit %d %s", r.code, r.stderr)
		}
	})
}

// TestKeyGenerate: the private key is 0600 and never overwritten.
func TestKeyGenerate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	r := reprobox(t, ".", "key", "generate", "--out", p)
	if r.code != 0 || len(strings.TrimSpace(r.stdout)) != 64 {
		t.Fatalf("exit %d stdout %q %s", r.code, r.stdout, r.stderr)
	}
	st, err := os.Stat(p + ".key")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%v %v", st.Mode(), err)
	}
	before, _ := os.ReadFile(p + ".key")
	if r := reprobox(t, ".", "key", "generate", "--out", p); r.code != 2 || !strings.Contains(r.stderr, "refusing to overwrite") {
		t.Fatalf("overwrite: exit %d %s", r.code, r.stderr)
	}
	if after, _ := os.ReadFile(p + ".key"); !bytes.Equal(before, after) {
		t.Fatal("key overwritten")
	}
	if r := reprobox(t, ".", "key", "generate"); r.code != 2 {
		t.Fatalf("no --out: exit %d", r.code)
	}
}

// TestVerifyProgressAndInterrupt: a running verify reports its elapsed time
// and step every --progress, and SIGINT stops the build, removes its work
// directories and exits 130, leaving the published files as they were.
func TestVerifyProgressAndInterrupt(t *testing.T) {
	dataDir, image := needImage(t)
	const marker = "3456.789"
	pub := t.TempDir()
	writeFile(t, filepath.Join(pub, "SHA256SUMS"), []byte(strings.Repeat("ab", 32)+"  x\n"))
	writeFile(t, filepath.Join(pub, "x"), []byte("published\n"))
	before := snap(t, pub)
	cmd := exec.Command(os.Args[0], "verify", "--image", image, "--data-dir", dataDir, "--published", filepath.Join(pub, "SHA256SUMS"),
		"--out", filepath.Join(t.TempDir(), "out"), "--artifact", "x", "--progress", "1s",
		"--", "sh", "-c", "echo '   Compiling slow-step v0.1.0'; exec sleep "+marker)
	cmd.Dir = fixture("reproducible")
	cmd.Env = append(os.Environ(), "REPROBOX_RUN_MAIN=1")
	var errb lockedBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !sleeping(marker) || !strings.Contains(errb.String(), "reprobox: verify build 1 of 1: ") {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("no running build with a progress line: %s", errb.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(errb.String(), "Compiling slow-step") {
		t.Errorf("the progress line does not name the step:\n%s", errb.String())
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit %v, want 130\n%s", err, errb.String())
	}
	if sleeping(marker) {
		t.Error("the build is still running")
	}
	dirs, _ := filepath.Glob(filepath.Join(dataDir, "work", "*", ".owner"))
	for _, o := range dirs {
		if b, err := os.ReadFile(o); err == nil && strings.HasPrefix(string(b), strconv.Itoa(cmd.Process.Pid)+" ") {
			t.Errorf("work directory left behind: %s", filepath.Dir(o))
		}
	}
	before.same(t, pub)
}
