//go:build !cgo

package compress

import "github.com/klauspost/compress/gzip"

// openGzip reads a gzip header from cr and returns a reader of the
// decompressed content of all the gzip members in cr. Without cgo it is
// klauspost/compress's pure-Go reader; with cgo, zlib's (gzip_zlib.go).
func openGzip(cr *countingReader, info *Info) (*pureGzip, error) {
	z, err := gzip.NewReader(cr)
	if err != nil {
		return &pureGzip{cr: cr}, err
	}
	info.Name, info.Comment, info.OS, info.Extra = z.Name, z.Comment, z.OS, z.Extra
	if !z.ModTime.IsZero() && z.ModTime.Unix() != 0 {
		info.ModTime = z.ModTime.UTC()
	}
	return &pureGzip{Reader: z, cr: cr}, nil
}

type pureGzip struct {
	*gzip.Reader
	cr *countingReader
}

// offset returns the number of compressed bytes consumed, give or take the
// reader's 4 KiB of read-ahead.
func (z *pureGzip) offset() int64 { return z.cr.n }
