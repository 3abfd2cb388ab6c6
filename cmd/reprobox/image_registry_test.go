package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprobox/reprobox/internal/testenv"
)

// startRegistry runs Debian's docker-registry on a loopback port with
// private storage and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	testenv.NeedProgram(t, "docker-registry")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n  secret: test\n", dir, host)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + host + "/v2/"); err == nil {
			resp.Body.Close()
			return host
		}
	}
	t.Fatalf("docker-registry did not start on %s", host)
	return ""
}

// TestImageTravelCommands runs push, pull and export as a user would: the
// digest survives each, and bad input exits with status 2.
func TestImageTravelCommands(t *testing.T) {
	host := startRegistry(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	data := t.TempDir()
	layout := filepath.Join(t.TempDir(), "layout")
	digest := writeLayout(t, layout)
	if r := reprobox(t, ".", "image", "import", layout, "--name", "test/tiny", "--data-dir", data); r.code != 0 {
		t.Fatalf("import: exit %d: %s", r.code, r.stderr)
	}

	r := reprobox(t, ".", "image", "push", "test/tiny", host+"/team/tiny:v1", "--data-dir", data)
	if want := host + "/team/tiny@" + digest + "\n"; r.code != 0 || r.stdout != want {
		t.Fatalf("push: exit %d, stdout %q, want %q\n%s", r.code, r.stdout, want, r.stderr)
	}
	pulled := t.TempDir()
	r = reprobox(t, ".", "image", "pull", host+"/team/tiny:v1", "--name", "test/pulled", "--data-dir", pulled)
	if r.code != 0 || r.stdout != "test/pulled@"+digest+"\n" || !strings.Contains(r.stderr, "resolves to "+digest) {
		t.Fatalf("pull by tag: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	r = reprobox(t, ".", "image", "pull", host+"/team/tiny@"+digest, "--data-dir", pulled)
	if r.code != 0 || r.stdout != host+"/team/tiny@"+digest+"\n" {
		t.Fatalf("pull by digest: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}

	for _, format := range []string{"oci", "docker"} {
		archive := filepath.Join(t.TempDir(), format+".tar")
		if r := reprobox(t, ".", "image", "export", "test/tiny", archive, "--format", format, "--data-dir", data); r.code != 0 {
			t.Fatalf("export --format %s: exit %d: %s", format, r.code, r.stderr)
		}
		r := reprobox(t, ".", "image", "import", archive, "--data-dir", t.TempDir())
		if r.code != 0 || r.stdout != "test/tiny@"+digest+"\n" {
			t.Errorf("import of the %s export: exit %d, stdout %q\n%s", format, r.code, r.stdout, r.stderr)
		}
	}

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	for _, bad := range [][]string{
		{"image", "pull", host + "/team/tiny:nope"},
		{"image", "pull", closed + "/team/tiny:v1"},
		{"image", "pull", "sha256:" + strings.Repeat("0", 64)},
		{"image", "push", "no/such", host + "/x"},
		{"image", "push", "test/tiny", closed + "/x"},
		{"image", "export", "test/tiny", filepath.Join(t.TempDir(), "x.tar"), "--format", "zip"},
		{"image", "export", "no/such", filepath.Join(t.TempDir(), "x.tar")},
		{"image", "inspect", "--lock", "test/pulled"},
		{"image", "build", "--lock", filepath.Join(t.TempDir(), "missing.json")},
		{"image", "build", "--lock", filepath.Join("..", "..", "images", "testdata", "lock", "sample.json"), "--package", "hello"},
		{"image", "build", "--lock", filepath.Join("..", "..", "images", "testdata", "lock", "sample.json"), "--source-date-epoch", "5"},
		{"image", "build", "--lock", "image_registry_test.go"},
	} {
		before, _ := os.ReadFile(filepath.Join(pulled, "oci", "index.json"))
		r := reprobox(t, ".", append(bad, "--data-dir", pulled)...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "reprobox: ") {
			t.Errorf("%v: exit %d, want 2\n%s", bad, r.code, r.stderr)
		}
		if after, _ := os.ReadFile(filepath.Join(pulled, "oci", "index.json")); string(after) != string(before) {
			t.Errorf("%v changed the store's index", bad)
		}
	}
}
