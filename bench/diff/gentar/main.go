// Command gentar writes two tarballs of a few hundred MB that differ in a few
// members, for benchmarking reprobox diff against diffoscope: a.tar and b.tar,
// and the same compressed with gzip (.tar.gz) and zstd (.tar.zst).
//
//	go run ./bench/diff/gentar -out DIR [-files 1500] [-mb 400]
//
// The content is pseudo-random from a fixed seed, so every run writes the same
// bytes. B differs from A in exactly these members:
//
//	data/text/file-0120.txt  one line now holds a build path
//	data/bin/blob-0043.bin   three bytes flipped in the middle
//	data/text/file-0777.txt  mtime moved into 2030 (metadata only)
//	data/bin/blob-0009.bin   mode 0644 → 0755 (metadata only)
//	usr/bin/hello            an ELF built in another directory (diff/testdata/rust/{a,b}/hello)
package main

import (
	"archive/tar"
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

var (
	out   = flag.String("out", ".", "directory for a.tar.gz and b.tar.gz")
	files = flag.Int("files", 1500, "number of data files")
	mb    = flag.Int("mb", 400, "approximate uncompressed size in MB")
	elfs  = flag.String("elf", "diff/testdata/rust", "directory holding a/hello and b/hello")
)

// The members of B that differ; members i with i%5 < 3 are text.
const (
	changedText = 120
	changedBlob = 43
	newMtime    = 777
	newMode     = 9
)

var (
	baseTime    = time.Unix(1700000000, 0)
	shiftedTime = time.Unix(1900000000, 0)
)

func main() {
	flag.Parse()
	for _, side := range []string{"a", "b"} {
		if err := write(side); err != nil {
			log.Fatal(err)
		}
	}
}

var words = strings.Fields(`the quick brown fox jumps over lazy dog build path crate rustc cargo
target release debug symbol section archive member compress stream hash byte offset`)

func write(side string) error {
	hello, err := os.ReadFile(filepath.Join(*elfs, side, "hello"))
	if err != nil {
		return err
	}
	var outs []*os.File
	var bufs []*bufio.Writer
	for _, ext := range []string{".tar", ".tar.gz", ".tar.zst"} {
		f, err := os.Create(filepath.Join(*out, side+ext))
		if err != nil {
			return err
		}
		defer f.Close()
		outs = append(outs, f)
		bufs = append(bufs, bufio.NewWriterSize(f, 1<<20))
	}
	gz, _ := gzip.NewWriterLevel(bufs[1], gzip.DefaultCompression)
	zs, err := zstd.NewWriter(bufs[2], zstd.WithEncoderConcurrency(2))
	if err != nil {
		return err
	}
	tw := tar.NewWriter(io.MultiWriter(bufs[0], gz, zs))
	add := func(name string, data []byte, mode int64, mt time.Time) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: mt,
			Uname: "root", Gname: "root", Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	per := *mb << 20 / *files
	for i := 0; i < *files; i++ {
		size := per/2 + rng.IntN(per)
		mode, mt := int64(0o644), baseTime
		var name string
		var data []byte
		if i%5 < 3 {
			// Text: compressible.
			name = fmt.Sprintf("data/text/file-%04d.txt", i)
			var b strings.Builder
			for line := 0; b.Len() < size; line++ {
				fmt.Fprintf(&b, "%06d", line)
				for w := 0; w < 12; w++ {
					b.WriteByte(' ')
					b.WriteString(words[rng.IntN(len(words))])
				}
				b.WriteByte('\n')
			}
			data = []byte(b.String())
			if side == "b" && i == changedText {
				data = []byte(strings.Replace(b.String(), "\n000100 ", "\n000100 /build/reprobox-variant/a/b/src ", 1))
			}
			if side == "b" && i == newMtime {
				mt = shiftedTime
			}
		} else {
			// Binary: incompressible.
			name = fmt.Sprintf("data/bin/blob-%04d.bin", i)
			data = make([]byte, size)
			for j := 0; j+8 <= len(data); j += 8 {
				v := rng.Uint64()
				for k := 0; k < 8; k++ {
					data[j+k] = byte(v >> (8 * k))
				}
			}
			if side == "b" && i == changedBlob {
				for _, k := range []int{size / 2, size/2 + 1, size/2 + 1000} {
					data[k] ^= 0xff
				}
			}
			if side == "b" && i == newMode {
				mode = 0o755
			}
		}
		if err := add(name, data, mode, mt); err != nil {
			return err
		}
	}
	if err := add("usr/bin/hello", hello, 0o755, baseTime); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	if err := zs.Close(); err != nil {
		return err
	}
	for i, b := range bufs {
		if err := b.Flush(); err != nil {
			return err
		}
		if err := outs[i].Close(); err != nil {
			return err
		}
	}
	return nil
}
