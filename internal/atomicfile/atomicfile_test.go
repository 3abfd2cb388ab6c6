package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "report.json")
	if err := WriteFile(name, []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(name, []byte("two\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(name)
	st, _ := os.Stat(name)
	if err != nil || string(got) != "two\n" || st.Mode().Perm() != 0o640 {
		t.Errorf("got %q (%v), mode %v", got, err, st.Mode())
	}
	// A failed write leaves the old file and no temporary file.
	boom := errors.New("boom")
	if err := Write(name, 0o644, func(w io.Writer) error {
		w.Write([]byte("half"))
		return boom
	}); !errors.Is(err, boom) {
		t.Errorf("err %v", err)
	}
	if got, _ := os.ReadFile(name); string(got) != "two\n" {
		t.Errorf("after a failed write: %q", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
}
