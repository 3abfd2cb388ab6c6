package cargolock

import (
	"fmt"
	"net/url"
	"strings"
)

// A GitSource is the source of a git dependency as Cargo.lock writes it:
// git+URL?REFKIND=REF#COMMIT (or git+URL#COMMIT for the default branch).
type GitSource struct {
	// URL is the repository's URL, without the query and the fragment.
	URL string
	// RefKind is "rev", "branch", "tag", or "" for the default branch: how
	// the manifest names the revision (and how cargo's source ID spells it).
	RefKind string
	// Ref is the revision as the manifest names it ("" for the default branch).
	Ref string
	// Commit is the full commit hash cargo locked, 40 lowercase hex digits.
	Commit string
}

// SourceID is the source without the locked commit, as cargo names it in
// [source] tables: git+URL, or git+URL?REFKIND=REF.
func (g GitSource) SourceID() string {
	if g.RefKind == "" {
		return "git+" + g.URL
	}
	return "git+" + g.URL + "?" + g.RefKind + "=" + url.QueryEscape(g.Ref)
}

// gitSchemes are the URL schemes reprobox hands to git: not ext:: or fd::,
// which run commands.
var gitSchemes = map[string]bool{"https": true, "http": true, "ssh": true, "git": true, "file": true}

// ParseGitSource reads a git+ source of Cargo.lock. The commit must be a full
// SHA-1 commit hash (40 lowercase hex digits, what cargo locks); the URL an
// absolute https, http, ssh, git or file URL; the query at most one of rev,
// branch or tag. Errors wrap ErrInvalid.
func ParseGitSource(source string) (GitSource, error) {
	fail := func(format string, args ...any) (GitSource, error) {
		return GitSource{}, fmt.Errorf("%w: git source %q: %s", ErrInvalid, source, fmt.Sprintf(format, args...))
	}
	rest, ok := strings.CutPrefix(source, "git+")
	if !ok {
		return fail("does not start with git+")
	}
	rest, commit, ok := strings.Cut(rest, "#")
	if !ok {
		return fail("names no locked commit (#COMMIT)")
	}
	if !isHex(commit, 40) {
		return fail("the locked commit %q is not 40 lowercase hex digits (a full SHA-1 commit hash)", commit)
	}
	raw, query, _ := strings.Cut(rest, "?")
	u, err := url.Parse(raw)
	if err != nil {
		return fail("%v", err)
	}
	if !gitSchemes[u.Scheme] || !strings.HasPrefix(raw, u.Scheme+"://") || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" {
		return fail("URL %q is not an absolute https, http, ssh, git or file URL", raw)
	}
	if u.Scheme != "file" && u.Host == "" {
		return fail("URL %q names no host", raw)
	}
	if u.Scheme == "file" && (u.Path == "" || u.Path[0] != '/') {
		return fail("URL %q names no absolute path", raw)
	}
	if strings.HasPrefix(raw, "-") || strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fail("URL %q holds a space or control character", raw)
	}
	g := GitSource{URL: raw, Commit: commit}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return fail("query %q: %v", query, err)
		}
		if len(q) != 1 {
			return fail("query %q does not name exactly one of rev, branch or tag", query)
		}
		for k, v := range q {
			if k != "rev" && k != "branch" && k != "tag" {
				return fail("query %q names %q, not rev, branch or tag", query, k)
			}
			if len(v) != 1 || v[0] == "" {
				return fail("query %q: %s needs exactly one non-empty value", query, k)
			}
			g.RefKind, g.Ref = k, v[0]
		}
	}
	return g, nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
