// Package jsonout writes what reprobox writes for machines as JSON that is
// itself reproducible: every object's keys sorted, whatever the order of
// struct fields, two-space indents and a final newline.
package jsonout

import (
	"bytes"
	"encoding/json"
	"io"
)

// Marshal returns v as indented JSON with the keys of every object sorted,
// ending with a newline. Numbers keep their text (no float rounding).
func Marshal(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	// Maps marshal with sorted keys.
	out, err := json.MarshalIndent(generic, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// Write writes v to w as Marshal does.
func Write(w io.Writer, v any) error {
	data, err := Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}
