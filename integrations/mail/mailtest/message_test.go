package mailtest_test

import (
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
)

// A digest's shape: multipart/mixed around multipart/alternative, a
// quoted-printable text part, a base64 HTML part and a CSV attachment.
func TestMessageParts(t *testing.T) {
	raw := strings.ReplaceAll(`Subject: x
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

=D0=9F=D1=80=D0=B8=D0=B2=D0=B5=D1=82, a long line that goes on=
 and on
--inner
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PHA+aGk8L3A+
--inner--
--outer
Content-Type: text/plain; charset=utf-8
Content-Disposition: attachment; filename="digest.csv"
Content-Transfer-Encoding: base64

YTtiCg==
--outer--
`, "\n", "\r\n")
	m := mailtest.Message{Data: []byte(raw)}
	if got := m.Text(); got != "Привет, a long line that goes on and on" {
		t.Errorf("Text() = %q", got)
	}
	if got := m.HTML(); got != "<p>hi</p>" {
		t.Errorf("HTML() = %q", got)
	}
	parts, err := m.Parts()
	if err != nil || len(parts) != 3 {
		t.Fatalf("Parts() = %d parts, %v; want 3", len(parts), err)
	}
	if a := parts[2]; a.Disposition != "attachment" || a.Filename != "digest.csv" || string(a.Body) != "a;b\n" {
		t.Errorf("attachment %+v", a)
	}
	if got := (mailtest.Message{Data: []byte("Subject: y\r\n\r\nplain body\r\n")}).Text(); got != "plain body\n" {
		t.Errorf("a message without Content-Type: Text() = %q", got)
	}
}
