package diff

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobox/reprobox/internal/testenv"
)

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
	rep, err := Files(context.Background(), "testdata/archive/a.tar.gz", "testdata/archive/b.tar.gz", checkOptions())
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "report.html")
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
	img := testenv.Screenshot(t, page, 1200, 900, os.Getenv("REPROBOX_SCREENSHOT"))
	// A rendered page has text and coloured badges: many distinct colours,
	// and no single colour covering nearly everything.
	colors, top := testenv.ColorStats(img)
	if colors < 50 || top > 0.97 {
		t.Errorf("screenshot looks blank: %d colours, the commonest covers %.1f%%", colors, top*100)
	}
}
