package sms

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultOutboxDir is the outbox folder when none is configured.
const DefaultOutboxDir = "./outbox"

// OutboxFile is the name of the outbox's file inside its folder.
const OutboxFile = "sms.jsonl"

// Outbox is the provider used when no SMS gateway is set (the default, and
// the demo's): it appends one JSON object per message to {dir}/sms.jsonl:
//
//	{"time":"2025-02-03T06:00:00Z","to":"+77011234567","text":"…",
//	 "reference":"…","metadata":{"rule":"…","level":2,"student_id":"…"},
//	 "encoding":"UCS-2","segments":2}
//
// Each line is written with one write under a lock shared by every Outbox
// of the process that writes to the same file, so concurrent senders never
// interleave lines.
type Outbox struct {
	path string
	now  func() time.Time
}

// NewOutbox returns an outbox writing to dir (DefaultOutboxDir when
// empty); the folder is created on the first Send.
func NewOutbox(dir string) *Outbox {
	if dir == "" {
		dir = DefaultOutboxDir
	}
	return &Outbox{path: filepath.Join(dir, OutboxFile), now: time.Now}
}

// Path is the file the outbox appends to.
func (o *Outbox) Path() string { return o.path }

// Name is "outbox".
func (o *Outbox) Name() string { return "outbox" }

type outboxLine struct {
	Time      string          `json:"time"`
	To        string          `json:"to"`
	Text      string          `json:"text"`
	Reference string          `json:"reference"`
	Metadata  webhookMetadata `json:"metadata"`
	Encoding  string          `json:"encoding"`
	Segments  int             `json:"segments"`
}

// fileLocks holds one mutex per outbox file path in this process.
var fileLocks sync.Map // absolute path -> *sync.Mutex

func lockFor(path string) *sync.Mutex {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	mu, _ := fileLocks.LoadOrStore(path, &sync.Mutex{})
	return mu.(*sync.Mutex)
}

// Send appends msg to the outbox file. Write failures are retryable.
func (o *Outbox) Send(ctx context.Context, msg Message) (Result, bool, error) {
	to, err := checkMessage("outbox", msg)
	if err != nil {
		return Result{}, false, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, true, ctxError("outbox", err)
	}
	enc, segs := Segments(msg.Text)
	line, err := json.Marshal(outboxLine{
		Time: o.now().UTC().Format(time.RFC3339), To: to, Text: msg.Text, Reference: msg.Reference,
		Metadata: webhookMetadata{Rule: msg.Rule, Level: msg.Level, StudentID: msg.StudentID},
		Encoding: enc, Segments: segs,
	})
	if err != nil {
		return Result{}, false, &Error{Provider: "outbox", Detail: "encoding failed", cause: ErrInvalidMessage}
	}
	line = append(line, '\n')

	mu := lockFor(o.path)
	mu.Lock()
	defer mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(o.path), 0o750); err != nil {
		return Result{}, true, &Error{Provider: "outbox", Temporary: true, Detail: "creating the folder: " + fileErr(err)}
	}
	f, err := os.OpenFile(o.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return Result{}, true, &Error{Provider: "outbox", Temporary: true, Detail: "opening: " + fileErr(err)}
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return Result{}, true, &Error{Provider: "outbox", Temporary: true, Detail: "writing: " + fileErr(err)}
	}
	if err := f.Close(); err != nil {
		return Result{}, true, &Error{Provider: "outbox", Temporary: true, Detail: "closing: " + fileErr(err)}
	}
	return Result{ProviderID: msg.Reference, Reply: "appended to " + o.path}, false, nil
}

func fileErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + " " + pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

// Disabled is the "none" provider: it sends nothing and answers every Send
// with ErrDisabled and retryable == false.
type Disabled struct{}

// Name is "none".
func (Disabled) Name() string { return "none" }

// Send returns ErrDisabled.
func (Disabled) Send(context.Context, Message) (Result, bool, error) {
	return Result{}, false, ErrDisabled
}
