// Package deptest holds the test that keeps the direction of imports between
// reprobox's packages: cmd → runner → sandbox, policies, diff → images.
package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/reprobox/reprobox/"

// allowed lists, for each package prefix, which of our packages it may import.
// The first matching prefix wins.
var allowed = []struct {
	pkg     string
	imports []string
}{
	{"cmd/", []string{"runner", "images", "sandbox", "policies", "diff", "internal"}},
	{"bench/", []string{"runner", "images", "sandbox", "policies", "diff", "internal"}},
	{"runner", []string{"sandbox", "policies", "diff", "images", "internal"}},
	// The conformance suite renders specs from the policies it checks.
	{"sandbox/sandboxtest", []string{"sandbox", "policies", "images", "internal"}},
	{"sandbox", []string{"sandbox", "images", "internal"}},
	{"policies", []string{"images", "internal"}},
	{"diff", []string{"diff", "images", "internal"}},
	{"images", []string{"internal"}},
	{"internal", []string{"internal"}},
}

func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-test", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		if strings.HasSuffix(pkg, ".test") || len(fields) > 1 && strings.HasPrefix(fields[1], "[") {
			continue // test variants: test files may import helpers freely
		}
		var rule []string
		found := false
		for _, a := range allowed {
			if strings.HasPrefix(pkg, a.pkg) {
				rule, found = a.imports, true
				break
			}
		}
		if !found {
			t.Errorf("package %s has no import rule: add it to allowed", pkg)
			continue
		}
		checked++
		for _, imp := range fields[1:] {
			dep, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			okDep := false
			for _, r := range rule {
				if dep == r || strings.HasPrefix(dep, r+"/") {
					okDep = true
				}
			}
			if !okDep {
				t.Errorf("%s imports %s, against cmd → runner → sandbox, policies, diff → images", pkg, dep)
			}
		}
	}
	if checked < 8 {
		t.Fatalf("checked only %d packages: go list output not understood", checked)
	}
}
