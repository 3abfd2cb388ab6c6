package cargolock

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"
)

// gitSeeds are the sources of testdata/git-sources.txt, one a line.
func gitSeeds(t testing.TB) []string {
	f, err := os.Open("testdata/git-sources.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if l := s.Text(); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func TestParseGitSource(t *testing.T) {
	const c = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		src, url, kind, ref, id string
	}{
		{"git+https://example.com/tool.git?rev=abc#" + c, "https://example.com/tool.git", "rev", "abc", "git+https://example.com/tool.git?rev=abc"},
		{"git+file:///tmp/r?branch=main#" + c, "file:///tmp/r", "branch", "main", "git+file:///tmp/r?branch=main"},
		{"git+ssh://git@host/r?tag=v1.0#" + c, "ssh://git@host/r", "tag", "v1.0", "git+ssh://git@host/r?tag=v1.0"},
		{"git+https://example.com/r#" + c, "https://example.com/r", "", "", "git+https://example.com/r"},
		{"git+https://example.com/r?branch=feat%2Fx#" + c, "https://example.com/r", "branch", "feat/x", "git+https://example.com/r?branch=feat%2Fx"},
	} {
		g, err := ParseGitSource(tc.src)
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		if g.URL != tc.url || g.RefKind != tc.kind || g.Ref != tc.ref || g.Commit != c || g.SourceID() != tc.id {
			t.Errorf("%s: %+v (id %s)", tc.src, g, g.SourceID())
		}
	}
	for _, bad := range []string{
		"registry+https://x/",
		"git+https://example.com/r",     // no commit
		"git+https://example.com/r#abc", // short commit
		"git+https://example.com/r#" + strings.ToUpper(c),
		"git+ext::sh -c touch% /tmp/pwned#" + c, // a command transport
		"git+fd::3#" + c,
		"git+https://example.com/r?rev=a&branch=b#" + c,
		"git+https://example.com/r?path=x#" + c,
		"git+https:///r#" + c,
		"git+file://relative#" + c,
	} {
		if _, err := ParseGitSource(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: err %v, want ErrInvalid", bad, err)
		}
	}
}

// FuzzParseGitSource: any source is parsed or refused with ErrInvalid; a
// parsed one has a 40-hex commit, a URL of an allowed scheme, and a source ID
// that parses back to the same source.
func FuzzParseGitSource(f *testing.F) {
	for _, s := range gitSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		g, err := ParseGitSource(src)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if !isHex(g.Commit, 40) || strings.HasPrefix(g.URL, "-") || !strings.Contains(g.URL, "://") {
			t.Fatalf("parsed %q into %+v", src, g)
		}
		g2, err := ParseGitSource(g.SourceID() + "#" + g.Commit)
		if err != nil || g2 != g {
			t.Fatalf("source ID %q#%s parses to %+v, %v; want %+v", g.SourceID(), g.Commit, g2, err, g)
		}
	})
}
