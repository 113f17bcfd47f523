package mail

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// Outbox is the sender used without an SMTP server: it writes every message
// as an .eml file into a folder. The file is named after the Message-ID and
// written atomically (temporary file, then rename), so a resent notice
// replaces its earlier copy instead of adding one.
type Outbox struct {
	dir    string
	from   *mail.Address
	closed atomic.Bool
}

// NewOutbox returns an outbox writing to dir (DefaultOutboxDir when empty)
// with the given From (DefaultFrom when empty). The folder is created on the
// first Send.
func NewOutbox(dir, from string) (*Outbox, error) {
	if dir == "" {
		dir = DefaultOutboxDir
	}
	if from == "" {
		from = DefaultFrom
	}
	addr, err := parseFrom(from)
	if err != nil {
		return nil, err
	}
	return &Outbox{dir: dir, from: addr}, nil
}

// Dir is the folder the outbox writes to.
func (o *Outbox) Dir() string { return o.dir }

// Send writes msg to Dir()/<Message-ID>.eml. Failures to write are
// retryable; an invalid message is not.
func (o *Outbox) Send(ctx context.Context, msg Message) (Result, bool, error) {
	m, err := build(msg, o.from)
	if err != nil {
		return Result{}, false, err
	}
	if o.closed.Load() {
		return Result{}, true, &Error{Op: "outbox", Detail: "sender closed", Temporary: true, cause: ErrClosed}
	}
	if err := ctx.Err(); err != nil {
		return Result{}, true, ctxError("outbox", err)
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		return Result{}, false, &Error{Op: "message", Detail: "rendering failed", cause: ErrInvalidMessage}
	}
	id, _ := normalizeMessageID(msg.MessageID) // validated by build
	name := FileName(id)
	if err := writeAtomic(o.dir, name, buf.Bytes()); err != nil {
		return Result{}, true, &Error{Op: "outbox", Detail: err.Error(), Temporary: true}
	}
	return Result{ProviderID: name, Reply: "written to " + filepath.Join(o.dir, name)}, false, nil
}

// Close makes later Sends fail with ErrClosed.
func (o *Outbox) Close() error {
	o.closed.Store(true)
	return nil
}

// FileName is the outbox file name for a Message-ID: the id with
// characters other than letters, digits and ._@+=- replaced by "_", plus a
// short hash of the id when anything was replaced or cut (so that two ids
// never share a file), plus ".eml".
func FileName(messageID string) string {
	id := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(messageID), "<"), ">")
	changed := false
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '.', r == '_', r == '@', r == '+', r == '=', r == '-':
			return r
		}
		changed = true
		return '_'
	}, id)
	if strings.HasPrefix(clean, ".") || clean == "" {
		clean = "_" + clean
		changed = true
	}
	if len(clean) > 180 {
		clean = clean[:180]
		changed = true
	}
	if changed {
		sum := sha256.Sum256([]byte(id))
		clean += "-" + hex.EncodeToString(sum[:4])
	}
	return clean + ".eml"
}

func writeAtomic(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return errors.New("creating the outbox folder: " + pathErr(err))
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*.eml")
	if err != nil {
		return errors.New("creating a file in the outbox folder: " + pathErr(err))
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return errors.New("writing the outbox file: " + pathErr(err))
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return errors.New("syncing the outbox file: " + pathErr(err))
	}
	if err := tmp.Close(); err != nil {
		return errors.New("closing the outbox file: " + pathErr(err))
	}
	if err := os.Chmod(tmp.Name(), 0o640); err != nil {
		return errors.New("setting the outbox file mode: " + pathErr(err))
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return errors.New("renaming the outbox file: " + pathErr(err))
	}
	return nil
}

// pathErr keeps the reason of a file error (the folder and Message-ID based
// names hold no personal data, but the reason is what matters).
func pathErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + " " + pe.Path + ": " + pe.Err.Error()
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Op + ": " + le.Err.Error()
	}
	return err.Error()
}
