package images

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"
)

// registry is a docker-registry (the distribution project's server, Debian's
// package) started by a test on a loopback port with private storage.
type registry struct {
	host string // 127.0.0.1:PORT
	log  *bytes.Buffer
}

func requireTool(t testing.TB, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		skipOrFail(t, tool+" is not installed (make deps installs the TEST_PACKAGES)")
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRegistry runs docker-registry; with user set, it requires that user
// and password (htpasswd, bcrypt).
func startRegistry(t testing.TB, user, password string) registry {
	t.Helper()
	requireTool(t, "docker-registry")
	dir := t.TempDir()
	auth := ""
	if user != "" {
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(h)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: test\n    path: %s\n", filepath.Join(dir, "htpasswd"))
	}
	var last error
	for range 5 { // the port may be taken between freePort and the bind
		host := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n  secret: test\n%s",
			filepath.Join(dir, "data"), host, auth)
		cfgPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		log := &bytes.Buffer{}
		cmd := exec.Command("docker-registry", "serve", cfgPath)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-done
		})
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			select {
			case <-done:
				last = fmt.Errorf("docker-registry exited: %s", log.String())
			default:
			}
			if last != nil {
				break
			}
			resp, err := http.Get("http://" + host + "/v2/")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
					return registry{host: host, log: log}
				}
			}
		}
		if last == nil {
			last = fmt.Errorf("docker-registry did not answer on %s: %s", host, log.String())
		}
	}
	t.Fatal(last)
	return registry{}
}

// useDockerConfig points DOCKER_CONFIG at a config.json with credentials for
// host (none if user is empty), as `docker login` writes it.
func useDockerConfig(t *testing.T, host, user, password string) {
	t.Helper()
	dir := t.TempDir()
	auths := map[string]any{}
	if user != "" {
		auths[host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
	}
	b, _ := json.Marshal(map[string]any{"auths": auths})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
}

// smallImage stores a two-layer test image in s.
func smallImage(t testing.TB, s *Store, name string) Image {
	t.Helper()
	return importLayers(t, s, name,
		gzLayer(t, tarOf(t, dir("etc/"), file("etc/hello", "hello from the registry test\n"))),
		rawLayer(tarOf(t, dir("usr/"), file("usr/data", strings.Repeat("reprobox ", 1000)))))
}

func skopeo(t testing.TB, args ...string) string {
	t.Helper()
	requireTool(t, "skopeo")
	out, err := exec.Command("skopeo", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPushSkopeoPull pushes with reprobox, copies with skopeo to another
// repository, and pulls back by digest and by tag: the digest never changes.
func TestPushSkopeoPull(t *testing.T) {
	reg := startRegistry(t, "", "")
	useDockerConfig(t, reg.host, "", "")
	ctx := context.Background()
	a := newStore(t)
	img := smallImage(t, a, "test/small")

	out, err := Push(ctx, a, "test/small", reg.host+"/team/small:v1", RegistryOptions{})
	if err != nil {
		t.Fatalf("Push: %v\n%s", err, reg.log)
	}
	if want := reg.host + "/team/small@" + img.Digest.String(); out != want {
		t.Errorf("Push returned %q, want %q", out, want)
	}
	// --preserve-digests: skopeo would otherwise compress the uncompressed
	// layer, which changes the manifest.
	skopeo(t, "copy", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false",
		"docker://"+reg.host+"/team/small:v1", "docker://"+reg.host+"/other/copy:v2")
	raw := skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+reg.host+"/other/copy:v2")
	if got := digest.FromString(raw); got != img.Digest {
		t.Errorf("skopeo's copy has digest %s, want %s", got, img.Digest)
	}

	b := newStore(t)
	pulled, err := Pull(ctx, b, reg.host+"/other/copy@"+img.Digest.String(), RegistryOptions{})
	if err != nil {
		t.Fatalf("Pull by digest: %v", err)
	}
	if pulled.Digest != img.Digest || pulled.Name != reg.host+"/other/copy" {
		t.Errorf("pulled %s, want %s/other/copy@%s", pulled.Reference(), reg.host, img.Digest)
	}
	var progress bytes.Buffer
	byTag, err := Pull(ctx, b, reg.host+"/other/copy:v2", RegistryOptions{Progress: &progress, Name: "local/copy"})
	if err != nil {
		t.Fatalf("Pull by tag: %v", err)
	}
	if byTag.Digest != img.Digest || byTag.Name != "local/copy" {
		t.Errorf("pulled by tag %s, want local/copy@%s", byTag.Reference(), img.Digest)
	}
	if !strings.Contains(progress.String(), "resolves to "+img.Digest.String()) {
		t.Errorf("pull by tag did not print the digest: %q", progress.String())
	}
	// The pulled image is a whole image: it unpacks.
	if _, err := b.Rootfs(ctx, byTag); err != nil {
		t.Errorf("Rootfs of the pulled image: %v", err)
	}
	if des, _ := os.ReadDir(b.tmpDir()); len(des) != 0 {
		t.Errorf("pull left %d files in the store's tmp directory", len(des))
	}
}

// TestSkopeoPushReproboxPull is the reverse: skopeo pushes the OCI archive
// reprobox exported, reprobox pulls it.
func TestSkopeoPushReproboxPull(t *testing.T) {
	reg := startRegistry(t, "", "")
	useDockerConfig(t, reg.host, "", "")
	a := newStore(t)
	img := smallImage(t, a, "test/small")
	archive := filepath.Join(t.TempDir(), "small.tar")
	if _, err := Export(a, "test/small", archive, FormatOCI); err != nil {
		t.Fatal(err)
	}
	skopeo(t, "copy", "--preserve-digests", "--dest-tls-verify=false", "oci-archive:"+archive, "docker://"+reg.host+"/from/skopeo:t")
	b := newStore(t)
	pulled, err := Pull(context.Background(), b, reg.host+"/from/skopeo:t", RegistryOptions{})
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if pulled.Digest != img.Digest {
		t.Errorf("pulled %s, want digest %s", pulled.Reference(), img.Digest)
	}

	// A Docker schema 2 manifest is stored converted to OCI, and says so.
	skopeo(t, "copy", "--format", "v2s2", "--dest-tls-verify=false", "oci-archive:"+archive, "docker://"+reg.host+"/from/docker:t")
	remoteRaw := skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+reg.host+"/from/docker:t")
	if !strings.Contains(remoteRaw, "application/vnd.docker.distribution.manifest.v2+json") {
		t.Fatalf("skopeo did not write a Docker manifest:\n%s", remoteRaw)
	}
	var progress bytes.Buffer
	conv, err := Pull(context.Background(), b, reg.host+"/from/docker@"+digest.FromString(remoteRaw).String(), RegistryOptions{Progress: &progress})
	if err != nil {
		t.Fatalf("Pull of a Docker manifest: %v", err)
	}
	if !strings.Contains(progress.String(), "stored converted to OCI as "+conv.Digest.String()) {
		t.Errorf("no note of the conversion: %q", progress.String())
	}
	if _, err := b.Rootfs(context.Background(), conv); err != nil {
		t.Errorf("Rootfs of the converted image: %v", err)
	}
}

// corruptingProxy forwards to the registry and changes what it sends for
// requests that match.
func corruptingProxy(t *testing.T, reg registry, match func(*http.Request) bool, change func([]byte) []byte) string {
	t.Helper()
	target, _ := url.Parse("http://" + reg.host)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.StatusCode != http.StatusOK || !match(resp.Request) {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.Request.Method == http.MethodGet {
			b = change(b)
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", fmt.Sprint(len(b)))
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestPullBadInput: each failure is a clear error and leaves the store as
// it was.
func TestPullBadInput(t *testing.T) {
	reg := startRegistry(t, "", "")
	useDockerConfig(t, reg.host, "", "")
	ctx := context.Background()
	src := newStore(t)
	img := smallImage(t, src, "test/small")
	if _, err := Push(ctx, src, "test/small", reg.host+"/bad/small:v1", RegistryOptions{}); err != nil {
		t.Fatalf("Push: %v", err)
	}
	layer := img.Manifest.Layers[0].Digest
	flipped := corruptingProxy(t, reg,
		func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/blobs/"+layer.String()) },
		func(b []byte) []byte { b = bytes.Clone(b); b[len(b)/2] ^= 0xff; return b })
	huge := corruptingProxy(t, reg,
		func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/manifests/") },
		func(b []byte) []byte { return append(b, bytes.Repeat([]byte(" "), 5<<20)...) })
	closed := fmt.Sprintf("127.0.0.1:%d", freePort(t))

	for _, tc := range []struct {
		name    string
		ref     string
		opts    RegistryOptions
		wantErr error
		wantMsg string
	}{
		{"blob digest mismatch", flipped + "/bad/small@" + img.Digest.String(), RegistryOptions{}, ErrInvalid, "the registry sent content with digest"},
		{"manifest too large", huge + "/bad/small:v1", RegistryOptions{}, ErrInvalid, "larger than 4194304 bytes"},
		{"manifest over a small limit", reg.host + "/bad/small:v1", RegistryOptions{MaxManifest: 100}, ErrInvalid, "larger than 100 bytes"},
		{"missing tag", reg.host + "/bad/small:nope", RegistryOptions{}, ErrNotFound, "has no such manifest"},
		{"missing repository", reg.host + "/no/such@" + img.Digest.String(), RegistryOptions{}, ErrNotFound, "has no such manifest"},
		{"unreachable registry", closed + "/bad/small:v1", RegistryOptions{}, ErrRegistry, "cannot reach " + closed},
		{"digest only", img.Digest.String(), RegistryOptions{}, ErrInvalid, "want registry/repository"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			smallImage(t, s, "already/here")
			before := snapshot(t, s.Dir())
			_, err := Pull(ctx, s, tc.ref, tc.opts)
			if !errors.Is(err, tc.wantErr) || !strings.Contains(fmt.Sprint(err), tc.wantMsg) {
				t.Fatalf("Pull(%s) = %v, want %v with %q", tc.ref, err, tc.wantErr, tc.wantMsg)
			}
			t.Logf("error: %v", err)
			if after := snapshot(t, s.Dir()); after != before {
				t.Errorf("the store changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// TestRegistryCredentials: a registry with htpasswd auth takes the right
// credentials from config.json and refuses wrong ones clearly, for push and
// pull, and a refused pull leaves the store unchanged.
func TestRegistryCredentials(t *testing.T) {
	reg := startRegistry(t, "alice", "s3cret")
	ctx := context.Background()
	src := newStore(t)
	img := smallImage(t, src, "test/small")

	useDockerConfig(t, reg.host, "alice", "wrong")
	_, err := Push(ctx, src, "test/small", reg.host+"/auth/small:v1", RegistryOptions{})
	if !errors.Is(err, ErrRegistry) || !strings.Contains(err.Error(), "refused the credentials") {
		t.Fatalf("Push with a wrong password = %v, want ErrRegistry naming the credentials", err)
	}
	t.Logf("push error: %v", err)

	useDockerConfig(t, reg.host, "alice", "s3cret")
	if _, err := Push(ctx, src, "test/small", reg.host+"/auth/small:v1", RegistryOptions{}); err != nil {
		t.Fatalf("Push with the right password: %v", err)
	}

	for _, tc := range []struct{ name, user, password string }{
		{"wrong password", "alice", "wrong"},
		{"no credentials", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			useDockerConfig(t, reg.host, tc.user, tc.password)
			s := newStore(t)
			before := snapshot(t, s.Dir())
			_, err := Pull(ctx, s, reg.host+"/auth/small@"+img.Digest.String(), RegistryOptions{})
			if !errors.Is(err, ErrRegistry) || !strings.Contains(err.Error(), "refused the credentials") {
				t.Fatalf("Pull = %v, want ErrRegistry naming the credentials", err)
			}
			t.Logf("pull error: %v", err)
			if after := snapshot(t, s.Dir()); after != before {
				t.Errorf("the store changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}

	useDockerConfig(t, reg.host, "alice", "s3cret")
	s := newStore(t)
	pulled, err := Pull(ctx, s, reg.host+"/auth/small@"+img.Digest.String(), RegistryOptions{})
	if err != nil || pulled.Digest != img.Digest {
		t.Fatalf("Pull with the right password = %v, %v", pulled.Reference(), err)
	}
}

// TestPushErrors: bad destinations and missing images are clear errors.
func TestPushErrors(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	smallImage(t, s, "test/small")
	closed := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	for _, tc := range []struct {
		name, ref, dest string
		wantErr         error
	}{
		{"missing image", "no/such", closed + "/x", ErrNotFound},
		{"digest in destination", "test/small", closed + "/x@sha256:" + strings.Repeat("a", 64), ErrInvalid},
		{"unreachable", "test/small", closed + "/x:v1", ErrRegistry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Push(ctx, s, tc.ref, tc.dest, RegistryOptions{})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Push = %v, want %v", err, tc.wantErr)
			}
			t.Logf("error: %v", err)
		})
	}
}

// TestPushPullDefaultImage round-trips the default image through a real
// registry when it is in the shared store (read only there).
func TestPushPullDefaultImage(t *testing.T) {
	if testing.Short() {
		t.Skip("copies the 300 MB default image; not with -short")
	}
	dir := os.Getenv("REPROBOX_DATA_DIR")
	if dir == "" {
		t.Skip("REPROBOX_DATA_DIR is not set (make test sets it)")
	}
	shared, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref := os.Getenv("REPROBOX_IMAGE")
	if ref == "" {
		ref = DefaultName
	}
	img, err := shared.Resolve(ref)
	if err != nil {
		skipOrFail(t, fmt.Sprintf("the default image is not in %s: %v", dir, err))
	}
	reg := startRegistry(t, "", "")
	useDockerConfig(t, reg.host, "", "")
	ctx := context.Background()
	if _, err := Push(ctx, shared, img.Reference().String(), reg.host+"/reprobox/rust:test", RegistryOptions{}); err != nil {
		t.Fatalf("Push: %v", err)
	}
	s := newStore(t)
	pulled, err := Pull(ctx, s, reg.host+"/reprobox/rust@"+img.Digest.String(), RegistryOptions{})
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if pulled.Digest != img.Digest {
		t.Errorf("pulled %s, want %s", pulled.Digest, img.Digest)
	}
}

func TestWhereFrom(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct{ ref, want string }{
		{"ghcr.io/team/rust@" + d, "reprobox image pull ghcr.io/team/rust@" + d},
		{"localhost:5000/rust@" + d, "reprobox image pull localhost:5000/rust@" + d},
		{"reprobox/rust@" + d, "reprobox image pull REGISTRY/REPOSITORY@" + d},
		{"reprobox/rust@" + d, "reprobox image build --lock FILE"},
	} {
		r, err := ParseReference(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := WhereFrom(r); !strings.Contains(got, tc.want) {
			t.Errorf("WhereFrom(%s) = %q, want it to contain %q", tc.ref, got, tc.want)
		}
	}
}
