package sms

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

const maxBody = 64 << 10

// endpoint is what the HTTP providers share: a client, the provider's name
// and the secrets to keep out of error texts.
type endpoint struct {
	provider string
	client   *http.Client
	secrets  []string
}

// do sends req and returns the status and (at most 64 KiB of) the body. A
// transport failure is returned as a retryable *Error whose text names the
// host only: never the query string or user info of the URL.
func (e *endpoint) do(ctx context.Context, req *http.Request) (int, []byte, *Error) {
	host := req.URL.Scheme + "://" + req.URL.Host
	resp, err := e.client.Do(req)
	if err != nil {
		if cerr := ctxErr(ctx); cerr != nil {
			return 0, nil, ctxError(e.provider, cerr)
		}
		var ue *url.Error
		cause := err
		if errors.As(err, &ue) {
			cause = ue.Err
		}
		return 0, nil, &Error{Provider: e.provider, Temporary: true,
			Detail: req.Method + " " + host + ": " + e.redact(cause.Error())}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody)) // let the connection be reused
	if err != nil {
		if cerr := ctxErr(ctx); cerr != nil {
			return resp.StatusCode, nil, ctxError(e.provider, cerr)
		}
		return resp.StatusCode, nil, &Error{Provider: e.provider, Status: resp.StatusCode, Temporary: true,
			Detail: "reading the answer: " + e.redact(err.Error())}
	}
	return resp.StatusCode, body, nil
}

// ctxErr is ctx.Err(), or DeadlineExceeded as soon as the deadline has
// passed.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

var (
	// numberRE matches phone-number-like runs: 7 or more characters of
	// digits, spaces, dashes, dots and parentheses, with an optional +.
	numberRE = regexp.MustCompile(`\+?\d[\d\s().-]{5,}\d`)
	emailRE  = regexp.MustCompile(`[^\s<>"'(),;:\[\]]*@[^\s<>"'(),;:\[\]]+`)
)

const maxDetail = 300

// redact removes the endpoint's secrets, anything that looks like a phone
// number or an email address, and keeps s to one short line.
func (e *endpoint) redact(s string) string {
	for _, sec := range e.secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	s = numberRE.ReplaceAllString(s, "[number]")
	s = emailRE.ReplaceAllString(s, "[address]")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxDetail {
		cut := maxDetail
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// baseURL checks an API base URL and strips a trailing slash.
func baseURL(raw, def string) (string, error) {
	if raw == "" {
		raw = def
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", errors.New("sms: the API URL must be an absolute http(s) URL")
	}
	if u.RawQuery != "" || u.User != nil {
		return "", errors.New("sms: the API URL must not carry a query or credentials")
	}
	return strings.TrimRight(raw, "/"), nil
}
