package runner

import "testing"

func TestStepWriter(t *testing.T) {
	var w stepWriter
	for _, chunk := range []string{
		"   Compiling libc v0.2", ".1 (/build/src)\nwarning: x\n",
		"Building stage1 compiler artifacts (x86_64-unknown-linux-gnu)\n",
		"some noise\nno newline at end",
	} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := w.Step(), "Building stage1 compiler artifacts (x86_64-unknown-linux-gnu)"; got != want {
		t.Errorf("step %q, want %q", got, want)
	}
}
