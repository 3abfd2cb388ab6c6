package diff

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// skipOrFail skips a test whose requirement is missing, or fails it when
// REPROBOX_TEST_DISALLOW_SKIP=1 (as in CI).
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("REPROBOX_TEST_DISALLOW_SKIP") == "1" {
		t.Fatalf("required test cannot run: "+format, args...)
	}
	t.Skipf(format, args...)
}

func TestWriteHTML(t *testing.T) {
	rep, err := Files(context.Background(), "testdata/archive/a.tar.gz", "testdata/archive/b.tar.gz", checkOptions())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rep.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		"<!DOCTYPE html>", `<details id="n1" open>`, "<summary>", "pkg/etc/tool.conf", `<span class="factor">time</span>`,
		`<mark title="build_path">/build/reprobox-variant/a/b/src</mark>`, "17 differences",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Self-contained: nothing is loaded from elsewhere.
	for _, bad := range []string{"<link", "src=\"http", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("page refers to an external resource: %q", bad)
		}
	}
	// Equal inputs still give a page.
	eq, err := Files(context.Background(), "testdata/text/a.txt", "testdata/text/a.txt", Options{})
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := eq.WriteHTML(&b); err != nil || !strings.Contains(b.String(), "identical") {
		t.Errorf("equal page: %v", err)
	}
}

// TestHTMLInBrowser renders the report in headless Chromium and checks that a
// real, non-blank screenshot comes out. Set REPROBOX_SCREENSHOT to a path to
// keep the screenshot.
func TestHTMLInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		skipOrFail(t, "no chromium in PATH (apt-get install chromium)")
	}
	rep, err := Files(context.Background(), "testdata/archive/a.tar.gz", "testdata/archive/b.tar.gz", checkOptions())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "report.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--no-first-run",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--screenshot="+shot, "--window-size=1200,900", "file://"+page)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", browser, err, out)
	}
	data, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, out)
	}
	if keep := os.Getenv("REPROBOX_SCREENSHOT"); keep != "" {
		if err := os.WriteFile(keep, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 900 {
		t.Errorf("screenshot is %v, want 1200x900", b)
	}
	// A rendered page has text and coloured badges: many distinct colours,
	// and no single colour covering nearly everything.
	colors, top := colorStats(img)
	if colors < 50 || top > 0.97 {
		t.Errorf("screenshot looks blank: %d colours, the commonest covers %.1f%%", colors, top*100)
	}
}

func colorStats(img image.Image) (distinct int, topShare float64) {
	counts := map[uint32]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			counts[(r>>8)<<16|(g>>8)<<8|bl>>8]++
		}
	}
	total, top := 0, 0
	for _, c := range counts {
		total += c
		top = max(top, c)
	}
	return len(counts), float64(top) / float64(total)
}
