package serverurl_test

import (
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/internal/serverurl"
)

func TestParse(t *testing.T) {
	k := serverurl.Kind{Pkg: "x", Name: "X URL", Plain: "x", Port: 1, Secure: "xs", SecurePort: 2, Example: "x://h", Encoded: "user"}
	for _, c := range []struct {
		raw  string
		want serverurl.URL
		err  bool
	}{
		{raw: "x://u:p@h", want: serverurl.URL{TLS: serverurl.StartTLS, Host: "h", Port: 1, Username: "u", Password: "p"}},
		{raw: "xs://h:25/INBOX", want: serverurl.URL{TLS: serverurl.Implicit, Host: "h", Port: 25, Path: "/INBOX"}},
		{raw: "x://127.0.0.1?tls=none", want: serverurl.URL{TLS: serverurl.None, Host: "127.0.0.1", Port: 1}},
		{raw: "x://mail.example?tls=none", err: true},
		{raw: "xs://h?tls=none", err: true},
		{raw: "x://h?tls=starttls&tls=none", err: true},
		{raw: "x://h?other=1", err: true},
		{raw: "y://h", err: true},
		{raw: "x://h:0", err: true},
		{raw: "", err: true},
	} {
		got, err := serverurl.Parse(c.raw, k)
		if (err != nil) != c.err || (!c.err && got != c.want) {
			t.Errorf("Parse(%q) = %+v, %v", c.raw, got, err)
		}
	}
}
