package mail

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestOutboxWritesAndOverwrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox") // created on first send
	o, err := NewOutbox(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	msg := notice(student)
	res := mustSend(t, o, msg)
	want := "notice.passport-renewal.2.S0042@sisnotify.local.eml"
	if res.ProviderID != want {
		t.Errorf("ProviderID = %q, want %q", res.ProviderID, want)
	}
	raw, err := os.ReadFile(filepath.Join(dir, want))
	if err != nil {
		t.Fatal(err)
	}
	m := parse(t, raw)
	if got := m.Header.Get("Message-Id"); got != "<"+msg.MessageID+">" {
		t.Errorf("Message-ID = %q", got)
	}
	if got := m.Header.Get("X-Sisnotify-Rule"); got != "passport-renewal" {
		t.Errorf("X-Sisnotify-Rule = %q", got)
	}
	if m.Parts["multipart"] != "multipart/alternative" || m.Parts["text/html"] != msg.HTML {
		t.Errorf("parts = %v", m.Parts)
	}

	// A resend replaces the file; no temporary files stay behind.
	msg.Subject = "Second attempt"
	mustSend(t, o, msg)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != want {
		t.Fatalf("outbox holds %v, want only %s", entries, want)
	}
	raw, _ = os.ReadFile(filepath.Join(dir, want))
	subject, _ := new(mime.WordDecoder).DecodeHeader(parse(t, raw).Header.Get("Subject"))
	if subject != "Second attempt" {
		t.Errorf("Subject after resend = %q", subject)
	}
	if fi, _ := os.Stat(filepath.Join(dir, want)); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v", fi.Mode().Perm())
	}
}

func TestOutboxConcurrentAndInvalid(t *testing.T) {
	dir := t.TempDir()
	o, err := NewOutbox(dir, "IO <io@university.kz>")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				msg := notice(student)
				msg.MessageID = fmt.Sprintf("n-%d@x", i) // 8 writers race on the same 10 files
				msg.Subject = fmt.Sprintf("writer %d", g)
				if _, _, err := o.Send(context.Background(), msg); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 10 {
		t.Errorf("%d files, want 10", len(entries))
	}
	for _, e := range entries {
		raw, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		parse(t, raw) // whole, never interleaved
	}

	msg := notice("not an address")
	if _, retry, err := o.Send(context.Background(), msg); err == nil || retry || !errors.Is(err, ErrInvalidAddress) {
		t.Errorf("invalid address: retryable=%v err=%v", retry, err)
	}

	// An unwritable folder is retryable.
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	o2, _ := NewOutbox(filepath.Join(blocker, "outbox"), "")
	_, retry, err := o2.Send(context.Background(), notice(student))
	if err == nil || !retry {
		t.Errorf("unwritable folder: retryable=%v err=%v", retry, err)
	}
	assertClean(t, err, student)

	o.Close()
	if _, retry, err := o.Send(context.Background(), notice(student)); !retry || !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: retryable=%v err=%v", retry, err)
	}
}

func TestFileName(t *testing.T) {
	cases := map[string]string{
		"notice.1.2@sisnotify.local":   "notice.1.2@sisnotify.local.eml",
		"<notice.1.2@sisnotify.local>": "notice.1.2@sisnotify.local.eml",
		"a+b=c_d-e@x":                  "a+b=c_d-e@x.eml",
	}
	for in, want := range cases {
		if got := FileName(in); got != want {
			t.Errorf("FileName(%q) = %q, want %q", in, got, want)
		}
	}
	// Unsafe characters are replaced, and a hash keeps distinct ids apart.
	a, b := FileName("../../etc/passwd@x"), FileName("__.._etc_passwd@x")
	for _, n := range []string{a, b} {
		if strings.ContainsAny(n, "/\\") || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".eml") {
			t.Errorf("unsafe file name %q", n)
		}
	}
	if FileName("a/b@x") == FileName("a_b@x") || FileName("a/b@x") == FileName("a:b@x") {
		t.Error("distinct ids share a file name")
	}
	long := FileName(strings.Repeat("x", 240) + "@x")
	if len(long) > 200 {
		t.Errorf("long id gives a %d-byte name", len(long))
	}
}
