package images

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

const (
	hexA = "2228587c3edc9f7f40f8d6bdebdff436ad4216e6c775b0dd820b7df1dfa58706"
	dgA  = digest.Digest("sha256:" + hexA)
)

func TestParseReference(t *testing.T) {
	tests := []struct {
		in      string
		want    Reference
		pinned  bool
		wantErr error
	}{
		{in: "reprobox/rust", want: Reference{Name: "reprobox/rust"}},
		{in: "debian", want: Reference{Name: "debian"}},
		{in: "debian:bookworm", want: Reference{Name: "debian:bookworm"}},
		{in: "docker.io/library/debian:12.5", want: Reference{Name: "docker.io/library/debian:12.5"}},
		{in: "localhost:5000/a/b", want: Reference{Name: "localhost:5000/a/b"}},
		{in: "localhost:5000/a/b:v1", want: Reference{Name: "localhost:5000/a/b:v1"}},
		{in: "a_b.c-d__e/f---g", want: Reference{Name: "a_b.c-d__e/f---g"}},
		{in: "reprobox/rust@sha256:" + hexA, want: Reference{Name: "reprobox/rust", Digest: dgA}, pinned: true},
		{in: "reprobox/rust:latest@sha256:" + hexA, want: Reference{Name: "reprobox/rust:latest", Digest: dgA}, pinned: true},
		{in: "sha256:" + hexA, want: Reference{Digest: dgA}, pinned: true},

		{in: "", wantErr: ErrInvalid},
		{in: "reprobox/Rust", wantErr: ErrInvalid},
		{in: "Registry.example/rust", want: Reference{Name: "Registry.example/rust"}},
		{in: "reprobox/rust:", wantErr: ErrInvalid},
		{in: "reprobox/rust@", wantErr: ErrInvalid},
		{in: "reprobox/rust@sha256:" + hexA[:63], wantErr: ErrInvalid},
		{in: "reprobox/rust@sha256:" + strings.ToUpper(hexA), wantErr: ErrInvalid},
		{in: "reprobox/rust@sha512:" + hexA + hexA, wantErr: ErrInvalid},
		{in: "sha256:" + hexA[:10], wantErr: ErrInvalid},
		{in: "sha256:", wantErr: ErrInvalid},
		{in: "/rust", wantErr: ErrInvalid},
		{in: "rust/", wantErr: ErrInvalid},
		{in: "a//b", wantErr: ErrInvalid},
		{in: "-a", wantErr: ErrInvalid},
		{in: "a b", wantErr: ErrInvalid},
		{in: "a:b:c", wantErr: ErrInvalid},
		{in: "a:" + strings.Repeat("t", 129), wantErr: ErrInvalid},
		{in: strings.Repeat("a", 256), wantErr: ErrInvalid},
		{in: "../etc", wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseReference(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseReference(%q) = %+v, %v; want error %v", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseReference(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseReference(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.Pinned() != tt.pinned {
				t.Errorf("Pinned() = %v, want %v", got.Pinned(), tt.pinned)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"reprobox/rust", "a:b", "localhost:5000/a@sha256:" + hexA, "sha256:" + hexA, "", "a//b"} {
		f.Add(s)
	}
	if b, err := os.ReadFile(filepath.Join("testdata", "references.txt")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f.Add(line)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReference(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if r.String() != s {
			t.Fatalf("ParseReference(%q).String() = %q", s, r.String())
		}
		if r.Pinned() && checkDigest(r.Digest) != nil {
			t.Fatalf("bad digest %q accepted", r.Digest)
		}
		r2, err := ParseReference(r.String())
		if err != nil || r2 != r {
			t.Fatalf("round trip of %q: %+v, %v", s, r2, err)
		}
		if strings.Contains(r.Name, "..") || strings.HasPrefix(r.Name, "/") {
			t.Fatalf("name %q accepted", r.Name)
		}
	})
}
