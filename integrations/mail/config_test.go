package mail

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	cases := []struct {
		raw        string
		host       string
		port       int
		tls        TLSMode
		user, pass string
	}{
		{"smtp://mail.example.org", "mail.example.org", 587, TLSStartTLS, "", ""},
		{"smtp://user:pass@mail.example.org:2525", "mail.example.org", 2525, TLSStartTLS, "user", "pass"},
		{"SMTP://user:pass@mail.example.org/", "mail.example.org", 587, TLSStartTLS, "user", "pass"},
		{"smtp://mail.example.org?tls=starttls", "mail.example.org", 587, TLSStartTLS, "", ""},
		{"smtps://user:p%40ss%3Aw%2Frd@mail.example.org", "mail.example.org", 465, TLSImplicit, "user", "p@ss:w/rd"},
		{"smtps://office%40uni.kz:x@mail.example.org:4650?tls=tls", "mail.example.org", 4650, TLSImplicit, "office@uni.kz", "x"},
		{"smtp://127.0.0.1:1025?tls=none", "127.0.0.1", 1025, TLSNone, "", ""},
		{"smtp://127.9.8.7?tls=none", "127.9.8.7", 587, TLSNone, "", ""},
		{"smtp://[::1]:25?tls=NONE", "::1", 25, TLSNone, "", ""},
		{"smtp://u:p@LocalHost:25?tls=none", "LocalHost", 25, TLSNone, "u", "p"},
		{"smtp://[2001:db8::1]:587", "2001:db8::1", 587, TLSStartTLS, "", ""},
	}
	for _, tc := range cases {
		cfg, err := ParseURL(tc.raw)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.raw, err)
			continue
		}
		if cfg.Host != tc.host || cfg.Port != tc.port || cfg.TLS != tc.tls || cfg.Username != tc.user || cfg.Password != tc.pass {
			t.Errorf("ParseURL(%q) = host %q port %d tls %v user %q pass %q", tc.raw, cfg.Host, cfg.Port, cfg.TLS, cfg.Username, cfg.Password)
		}
	}
}

func TestParseURLErrorsHideThePassword(t *testing.T) {
	const pw = "Sup3rS3cret"
	bad := []string{
		"",
		"mail.example.org:587",
		"http://u:" + pw + "@mail.example.org",
		"smtp://u:" + pw + "@",
		"smtp://u:" + pw + "@mail.example.org:0",
		"smtp://u:" + pw + "@mail.example.org:99999",
		"smtp://u:" + pw + "@mail.example.org:port",
		"smtp://u:" + pw + "%zz@mail.example.org",   // bad escape
		"smtp://u:" + pw + " x@mail.example.org",    // unescaped space
		"smtp://u:" + pw + "@mail.example.org/path", // path
		"smtp://u:" + pw + "@mail.example.org?tls=none",
		"smtp://u:" + pw + "@192.168.1.10?tls=none",
		"smtps://u:" + pw + "@127.0.0.1?tls=none", // implicit TLS cannot be turned off
		"smtp://u:" + pw + "@mail.example.org?tls=tls",
		"smtp://u:" + pw + "@mail.example.org?tls=maybe",
		"smtp://u:" + pw + "@mail.example.org?auth=plain",
		"smtp://u:" + pw + "@mail.example.org?tls=starttls&tls=none",
		"smtp:u:" + pw + "@mail.example.org",
	}
	for _, raw := range bad {
		_, err := ParseURL(raw)
		if err == nil {
			t.Errorf("ParseURL(%q) succeeded", raw)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("ParseURL(%q) error %q repeats the password", raw, err)
		}
	}
}

func TestConfigNeverPrintsThePassword(t *testing.T) {
	cfg, err := ParseURL("smtp://office:Sup3rS3cret@mail.example.org")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "mail", cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), cfg.String(), b.String()} {
		if strings.Contains(s, "Sup3rS3cret") {
			t.Errorf("printed config %q contains the password", s)
		}
		if !strings.Contains(s, "mail.example.org") {
			t.Errorf("printed config %q does not name the host", s)
		}
	}
}
