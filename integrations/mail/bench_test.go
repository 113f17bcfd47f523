package mail

import (
	"bytes"
	"context"
	"fmt"
	netmail "net/mail"
	"net/smtp"
	"sync"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
)

const benchMessages = 10_000

// BenchmarkSMTP sends 10,000 notices to an in-process mailtest server on
// loopback through the pool (one and four connections), and measures in the
// same run what the server itself can take over one connection, by sending
// the same rendered bytes with the standard library's minimal net/smtp
// client. Each sub-benchmark reports msgs/s.
//
//	go test -run '^$' -bench SMTP -benchtime 3x ./integrations/mail/
func BenchmarkSMTP(b *testing.B) {
	s := mailtest.NewServer(b, mailtest.Discard())
	msg := notice(student)

	for _, bc := range []struct {
		name   string
		conns  int
		checks bool
	}{
		{"gomail/conns=1", 1, false},
		{"gomail/conns=4", 4, false},
		{"gomail+noop+rset/conns=1", 1, true},
		{"gomail+noop+rset/conns=4", 4, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := poolConfig(b, s, bc.conns)
			p, err := openPool(cfg, bc.checks)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			start := time.Now()
			for range b.N {
				sendAll(b, p, msg, bc.conns)
			}
			b.ReportMetric(float64(benchMessages*b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}

	b.Run("netsmtp-raw/conns=1", func(b *testing.B) {
		m, err := build(msg, mustFrom(b))
		if err != nil {
			b.Fatal(err)
		}
		var raw bytes.Buffer
		if _, err := m.WriteTo(&raw); err != nil {
			b.Fatal(err)
		}
		c, err := smtp.Dial(s.Addr())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Quit()
		start := time.Now()
		for range b.N {
			for range benchMessages {
				if err := c.Mail("international@localhost"); err != nil {
					b.Fatal(err)
				}
				if err := c.Rcpt(student); err != nil {
					b.Fatal(err)
				}
				w, err := c.Data()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.Write(raw.Bytes()); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(benchMessages*b.N)/time.Since(start).Seconds(), "msgs/s")
	})
}

func mustFrom(b *testing.B) *netmail.Address {
	a, err := parseFrom(DefaultFrom)
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// sendAll sends benchMessages copies of msg from `workers` goroutines.
func sendAll(b *testing.B, p *Pool, msg Message, workers int) {
	var wg sync.WaitGroup
	per := benchMessages / workers
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				m := msg
				m.MessageID = fmt.Sprintf("bench-%d-%d@sisnotify.local", w, i)
				if _, _, err := p.Send(context.Background(), m); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
