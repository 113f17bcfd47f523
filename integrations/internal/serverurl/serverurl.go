// Package serverurl parses the URLs of the mail servers sisnotify talks
// to, SMTP to send and IMAP to read bounces, by one set of rules: a scheme
// whose connection starts in plain text and must upgrade with STARTTLS,
// one that speaks TLS from the first byte, an optional user and password
// (percent-encoded), host and port, and a single query parameter, tls,
// where tls=none (no encryption at all) is allowed for a loopback host
// only. Errors never repeat the URL, the user or the password.
package serverurl

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// TLS says how a connection is protected (mail.TLSMode and
// mailbox.TLSMode name it).
type TLS int

const (
	StartTLS TLS = iota // plain text, then STARTTLS, required
	Implicit            // TLS from the first byte
	None                // never encrypted: loopback hosts only
)

func (m TLS) String() string {
	switch m {
	case StartTLS:
		return "starttls"
	case Implicit:
		return "tls"
	case None:
		return "none"
	}
	return "TLSMode(" + strconv.Itoa(int(m)) + ")"
}

// Kind describes a server's URLs.
type Kind struct {
	Pkg        string // the package, the prefix of the errors ("mail")
	Name       string // what the URL is called in errors ("SMTP URL")
	Plain      string // the STARTTLS scheme ("smtp") and its default port
	Port       int
	Secure     string // the implicit-TLS scheme ("smtps") and its default port
	SecurePort int
	Example    string // how a URL looks ("smtp://user:pass@host:port")
	Encoded    string // what must be percent-encoded ("user or password")
}

// URL is a parsed server URL. Path and Fragment are left to the caller.
type URL struct {
	TLS                TLS
	Host               string
	Port               int
	Username, Password string
	Path, Fragment     string
}

// Parse parses raw as a URL of kind k.
func Parse(raw string, k Kind) (URL, error) {
	var out URL
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return out, fmt.Errorf("%s: %s is empty", k.Pkg, k.Name)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, password included: drop it.
		return out, fmt.Errorf("%s: %s does not parse (special characters in %s must be percent-encoded)", k.Pkg, k.Name, k.Encoded)
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case k.Plain:
		out.TLS, out.Port = StartTLS, k.Port
	case k.Secure:
		out.TLS, out.Port = Implicit, k.SecurePort
	case "":
		return out, fmt.Errorf("%s: %s has no scheme: use %s:// or %s://", k.Pkg, k.Name, k.Secure, k.Plain)
	default:
		return out, fmt.Errorf("%s: %s scheme %q is not supported: use %s:// or %s://", k.Pkg, k.Name, u.Scheme, k.Secure, k.Plain)
	}
	if u.Opaque != "" {
		return out, fmt.Errorf("%s: %s must look like %s", k.Pkg, k.Name, k.Example)
	}
	out.Host = u.Hostname()
	if out.Host == "" {
		return out, fmt.Errorf("%s: %s has no host", k.Pkg, k.Name)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return out, fmt.Errorf("%s: %s port is not a number between 1 and 65535", k.Pkg, k.Name)
		}
		out.Port = n
	}
	if u.User != nil {
		out.Username = u.User.Username()
		out.Password, _ = u.User.Password()
	}
	out.Path, out.Fragment = u.Path, u.Fragment
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return out, fmt.Errorf("%s: %s query does not parse", k.Pkg, k.Name)
	}
	for key, v := range q {
		if key != "tls" {
			return out, fmt.Errorf("%s: %s parameter %q is not supported (only tls)", k.Pkg, k.Name, key)
		}
		if len(v) != 1 {
			return out, fmt.Errorf("%s: %s parameter tls is given more than once", k.Pkg, k.Name)
		}
	}
	if q.Has("tls") {
		switch mode := strings.ToLower(q.Get("tls")); {
		case mode == "none" && out.TLS == StartTLS:
			if !IsLoopback(out.Host) {
				return out, fmt.Errorf("%s: tls=none is only allowed for a loopback host (127.0.0.0/8, ::1, localhost), not %q: use STARTTLS or %s://", k.Pkg, out.Host, k.Secure)
			}
			out.TLS = None
		case mode == "starttls" && out.TLS == StartTLS:
		case mode == "tls" && out.TLS == Implicit:
		default:
			return out, fmt.Errorf("%s: tls=%s is not valid with %s:// (%s: starttls or none; %s: tls)", k.Pkg, q.Get("tls"), scheme, k.Plain, k.Secure)
		}
	}
	return out, nil
}

// IsLoopback reports whether host is localhost or a loopback IP literal.
// Other names are not resolved: what they point to can change.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
