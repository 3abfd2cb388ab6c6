package images

import (
	"io"

	"github.com/klauspost/compress/zstd"
)

// maxZstdWindow bounds the memory a zstd layer may make the decoder allocate.
const maxZstdWindow = 128 << 20

type zstdReader struct{ *zstd.Decoder }

func (z zstdReader) Close() error { z.Decoder.Close(); return nil }

func newZstdReader(r io.Reader) (io.ReadCloser, error) {
	d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, err
	}
	return zstdReader{d}, nil
}
