package jobs

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/iec-almaty/sisnotify/integrations/sis"
)

// streamHash is the row hash as the snapshot's stored hashes were made:
// written to xxhash piece by piece.
func streamHash(r *sis.Row, skip int) uint64 {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(hashVersion)
	var lenBuf [binary.MaxVarintLen64]byte
	for i := 0; i < r.Len(); i++ {
		if i == skip {
			continue
		}
		if r.Null(i) {
			_, _ = d.Write([]byte{0xff})
			continue
		}
		n := binary.PutUvarint(lenBuf[:], uint64(len(r.Bytes(i))))
		_, _ = d.Write(lenBuf[:n])
		_, _ = d.Write(r.Bytes(i))
	}
	return d.Sum64()
}

// The one-shot row hash is the stored one: a change of it would make the
// next sync take every row of the snapshot for changed.
func TestRowHashIsTheStoredHash(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var h hasher
	for i := 0; i < 20_000; i++ {
		vals := make([][]byte, 1+rng.IntN(24))
		for j := range vals {
			if rng.IntN(4) == 0 {
				continue // NULL
			}
			v := make([]byte, rng.IntN(300))
			for k := range v {
				v[k] = byte(rng.IntN(256))
			}
			vals[j] = v
		}
		r := sis.NewRow(vals...)
		skip := rng.IntN(len(vals)+1) - 1
		if got, want := h.hash(r, skip), streamHash(r, skip); got != want {
			t.Fatalf("row %d: hash %x, stored hashes are %x", i, got, want)
		}
	}
	// And one pinned value, whatever the implementation.
	r := sis.NewRow([]byte("S0000001"), []byte("Zhiwei"), nil, []byte{})
	if got := h.hash(r, -1); got != 0x89e0eac370ffc34b {
		t.Errorf("hash of the pinned row = %#x", got)
	}
}
