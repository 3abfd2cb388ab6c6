package jsonout

import (
	"strings"
	"testing"
)

func TestMarshalSorted(t *testing.T) {
	type inner struct {
		Z int     `json:"z"`
		A float64 `json:"a"`
	}
	v := struct {
		B string           `json:"b"`
		A map[string]inner `json:"a"`
	}{B: "x<y", A: map[string]inner{"k2": {1, 12345678901234567}, "k1": {2, 0.1}}}
	got, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "a": {
    "k1": {
      "a": 0.1,
      "z": 2
    },
    "k2": {
      "a": 12345678901234568,
      "z": 1
    }
  },
  "b": "x\u003cy"
}
`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	var b strings.Builder
	if err := Write(&b, v); err != nil || b.String() != want {
		t.Errorf("Write: %q, %v", b.String(), err)
	}
}
