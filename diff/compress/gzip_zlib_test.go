//go:build cgo

package compress

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

var benchData = sync.OnceValues(func() (raw, gz []byte) {
	// Like bench/diff/gentar: 60% lines of words, 40% random bytes, in
	// members of about 280 KB.
	words := strings.Fields("the quick brown fox jumps over a lazy dog while build paths and hostnames leak into artifacts")
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for i := 0; b.Len() < 100<<20; i++ {
		size := 140<<10 + rng.IntN(280<<10)
		end := b.Len() + size
		if i%5 < 3 {
			for line := 0; b.Len() < end; line++ {
				fmt.Fprintf(&b, "%06d", line)
				for range 12 {
					b.WriteByte(' ')
					b.WriteString(words[rng.IntN(len(words))])
				}
				b.WriteByte('\n')
			}
		} else {
			for b.Len() < end {
				v := rng.Uint64()
				for k := range 8 {
					b.WriteByte(byte(v >> (8 * k)))
				}
			}
		}
	}
	raw = b.Bytes()
	var z bytes.Buffer
	w, _ := gzip.NewWriterLevel(&z, gzip.DefaultCompression)
	w.Write(raw)
	w.Close()
	return raw, z.Bytes()
})

// BenchmarkGunzip compares zlib with klauspost/compress on ~100 MB, read in
// chunks of several sizes.
func BenchmarkGunzip(b *testing.B) {
	raw, gz := benchData()
	for _, impl := range []string{"klauspost", "zlib"} {
		for _, chunk := range []int{4 << 10, 32 << 10, 256 << 10} {
			b.Run(fmt.Sprintf("%s/read=%dK", impl, chunk>>10), func(b *testing.B) {
				buf := make([]byte, chunk)
				b.SetBytes(int64(len(raw)))
				cpu0 := cpuTime()
				for b.Loop() {
					cr := &countingReader{r: io.NewSectionReader(bytes.NewReader(gz), 0, int64(len(gz)))}
					var r io.ReadCloser
					var err error
					if impl == "zlib" {
						r, err = openGzip(cr, &Info{})
					} else {
						r, err = gzip.NewReader(cr)
					}
					if err != nil {
						b.Fatal(err)
					}
					n := int64(0)
					for {
						m, err := io.ReadFull(r, buf)
						n += int64(m)
						if err == io.EOF || err == io.ErrUnexpectedEOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					r.Close()
					if n != int64(len(raw)) {
						b.Fatalf("%d bytes, want %d", n, len(raw))
					}
				}
				// CPU time is steadier than wall time on a shared machine.
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
