package diff

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps package diff independent of the rest of reprobox (it must
// build without the sandbox) and of all but a few small modules. Its tests may
// also use reprobox's test helpers, which import only the standard library.
func TestImports(t *testing.T) {
	const testenv = "github.com/reprobox/reprobox/internal/testenv"
	checkImports(t, ".", func(file, p string) bool {
		for _, a := range []string{
			"github.com/reprobox/reprobox/diff",
			"github.com/klauspost/compress",
			"github.com/ulikunitz/xz",
			"github.com/ianlancetaylor/demangle",
		} {
			if p == a || strings.HasPrefix(p, a+"/") {
				return true
			}
		}
		return p == testenv && strings.HasSuffix(file, "_test.go")
	})
	checkImports(t, "../internal/testenv", func(string, string) bool { return false })
}

// checkImports reports every non-standard import in the Go files under root
// that allowed refuses.
func checkImports(t *testing.T, root string, allowed func(file, path string) bool) {
	t.Helper()
	err := filepath.WalkDir(root, func(file string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(file, ".go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, spec := range f.Imports {
			p, _ := strconv.Unquote(spec.Path.Value)
			if strings.Contains(strings.Split(p, "/")[0], ".") && !allowed(file, p) {
				t.Errorf("%s imports %s", file, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
