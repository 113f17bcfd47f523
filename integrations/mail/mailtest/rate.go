package mailtest

import (
	"bytes"
	"fmt"
	"net/smtp"
	"time"
)

// OneConnectionRate measures the server's limit: n messages of size bytes
// sent back to back over one plain connection with the standard library's
// client, in messages per second. Benchmarks print their own rate next to
// it.
func (s *Server) OneConnectionRate(n, size int) (float64, error) {
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		return 0, err
	}
	defer c.Quit()
	var body bytes.Buffer
	body.WriteString("From: bench@sink.test\r\nTo: rcpt@sink.test\r\nSubject: rate\r\n\r\n")
	for body.Len() < size {
		body.WriteString("The quick brown fox jumps over the lazy dog.\r\n")
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := c.Mail("bench@sink.test"); err != nil {
			return 0, err
		}
		if err := c.Rcpt("rcpt@sink.test"); err != nil {
			return 0, err
		}
		w, err := c.Data()
		if err != nil {
			return 0, err
		}
		fmt.Fprintf(w, "Message-ID: <rate-%d@sink.test>\r\n", i)
		if _, err := w.Write(body.Bytes()); err != nil {
			return 0, err
		}
		if err := w.Close(); err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
