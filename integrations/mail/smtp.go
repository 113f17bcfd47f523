package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/mail"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/internal/serverurl"
	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// Pool sends mail over a fixed number of reused SMTP connections, one per
// concurrent sender: each Send checks a connection out (waiting for a free
// one, or for ctx; the most recently used first), dials it lazily and checks
// it back in.
//
// go-mail's NOOP before and RSET after every message are turned off: they
// cost three of the seven round trips per message. A connection that died
// while idle is noticed instead when the first command (MAIL FROM) gets no
// answer, or by go-mail's connection check (ErrConnCheck); nothing of the
// message has been sent then, so the pool re-dials and sends it once more
// within the same Send. A connection that fails later in a send is dropped
// and the error is retryable; the next Send dials a new one.
type Pool struct {
	cfg     Config
	checks  bool // keep go-mail's NOOP and RSET per message (benchmark comparison only)
	from    *mail.Address
	tls     *tls.Config
	secrets []string

	permits   chan struct{} // one per connection; held while a Send uses one
	mu        sync.Mutex
	idle      []*conn // LIFO: the most recently used (warm) connection first
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// NewPool checks cfg and returns a pool of cfg.Connections connections;
// nothing is dialled until the first Send.
func NewPool(cfg Config) (*Pool, error) { return openPool(cfg, false) }

func openPool(cfg Config, checks bool) (*Pool, error) {
	if cfg.Host == "" {
		return nil, errors.New("mail: no SMTP host configured")
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultSMTPPort
		if cfg.TLS == TLSImplicit {
			cfg.Port = DefaultSMTPSPort
		}
	}
	if cfg.TLS == TLSNone && !serverurl.IsLoopback(cfg.Host) {
		return nil, errors.New("mail: TLS can only be turned off for a loopback host")
	}
	from, err := parseFrom(cfg.from())
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = cfg.Host
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	p := &Pool{
		cfg:     cfg,
		checks:  checks,
		from:    from,
		tls:     tc,
		secrets: []string{cfg.Password, cfg.Username},
		permits: make(chan struct{}, cfg.connections()),
		done:    make(chan struct{}),
	}
	for range cfg.connections() {
		c := &conn{p: p}
		if c.gm, err = p.newClient(c); err != nil {
			return nil, errors.New("mail: configuring the SMTP client: " + redact(err.Error(), p.secrets...))
		}
		p.idle = append(p.idle, c)
	}
	return p, nil
}

func (p *Pool) newClient(c *conn) (*gomail.Client, error) {
	opts := []gomail.Option{
		gomail.WithPort(p.cfg.Port),
		gomail.WithTimeout(p.cfg.timeout()),
		gomail.WithDialContextFunc(c.dial),
		gomail.WithTLSConfig(p.tls),
	}
	if !p.checks {
		opts = append(opts, gomail.WithoutNoop(), gomail.WithoutRset())
	}
	if p.cfg.TLS == TLSStartTLS {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	} else {
		// Implicit TLS is done by c.dial; TLSNone never encrypts.
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if p.cfg.HELO != "" {
		opts = append(opts, gomail.WithHELO(p.cfg.HELO))
	}
	if p.cfg.Username != "" {
		mechs := []gomail.SMTPAuthType{gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1,
			gomail.SMTPAuthPlain, gomail.SMTPAuthLogin, gomail.SMTPAuthCramMD5}
		if p.cfg.TLS == TLSNone { // loopback only, checked above
			mechs = []gomail.SMTPAuthType{gomail.SMTPAuthPlainNoEnc, gomail.SMTPAuthLoginNoEnc}
		}
		opts = append(opts, gomail.WithUsername(p.cfg.Username), gomail.WithPassword(p.cfg.Password),
			gomail.WithOpportunisticSMTPAuth(mechs...))
	}
	return gomail.NewClient(p.cfg.Host, opts...)
}

// Send delivers msg over one of the pool's connections.
func (p *Pool) Send(ctx context.Context, msg Message) (Result, bool, error) {
	m, err := build(msg, p.from)
	if err != nil {
		return Result{}, false, err
	}
	c, err := p.acquire(ctx)
	if err != nil {
		return Result{}, true, err
	}
	defer p.release(c)
	return c.send(ctx, m)
}

// acquire waits for a free connection, preferring the one used last, so
// that a pool larger than the load keeps few connections open.
func (p *Pool) acquire(ctx context.Context) (*conn, error) {
	closed := &Error{Op: "send", Detail: "sender closed", Temporary: true, cause: ErrClosed}
	select {
	case <-p.done:
		return nil, closed
	default:
	}
	select {
	case p.permits <- struct{}{}:
	case <-ctx.Done():
		return nil, ctxError("send", ctx.Err())
	case <-p.done:
		return nil, closed
	}
	select {
	case <-p.done:
		<-p.permits
		return nil, closed
	default:
	}
	p.mu.Lock()
	c := p.idle[len(p.idle)-1]
	p.idle = p.idle[:len(p.idle)-1]
	p.mu.Unlock()
	return c, nil
}

func (p *Pool) release(c *conn) {
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
	<-p.permits
}

// Close waits for the sends in progress, says QUIT on every open
// connection and closes it. Later Sends fail with ErrClosed.
func (p *Pool) Close() error {
	p.closeOnce.Do(func() {
		close(p.done)
		for range cap(p.permits) { // wait for the sends in progress
			p.permits <- struct{}{}
		}
		var errs []error
		for _, c := range p.idle {
			if err := c.quit(); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			p.closeErr = errors.New("mail: closing SMTP connections: " + redact(errors.Join(errs...).Error(), p.secrets...))
		}
	})
	return p.closeErr
}

// conn is one pooled connection: a go-mail client (configuration) and, once
// dialled, its SMTP session. It is used by one Send at a time.
type conn struct {
	p   *Pool
	gm  *gomail.Client
	sc  *smtp.Client
	cc  *ctxConn
	ctx context.Context // the ctx of the Send in progress, for dial
}

// dial is go-mail's DialContextFunc: it connects to the configured host,
// wraps the connection so that the Send's ctx can interrupt any read or
// write on it, and does the TLS handshake for implicit TLS.
func (c *conn) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	p := c.p
	d := net.Dialer{Timeout: p.cfg.timeout()}
	raw, err := d.DialContext(ctx, "tcp", net.JoinHostPort(p.cfg.Host, strconv.Itoa(p.cfg.Port)))
	if err != nil {
		return nil, err
	}
	cc := &ctxConn{Conn: raw}
	cc.bind(c.ctx)
	c.cc = cc
	if p.cfg.TLS != TLSImplicit {
		return cc, nil
	}
	tc := tls.Client(cc, p.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err // c.cc is closed by connect
	}
	return tc, nil
}

func (c *conn) connect(ctx context.Context) error {
	sc, err := c.gm.DialToSMTPClientWithContext(ctx)
	if err != nil {
		c.discard() // go-mail leaves the connection open when EHLO, STARTTLS or AUTH fail
		e := &Error{Op: "connect", Detail: redact(err.Error(), c.p.secrets...), Temporary: true}
		var tpe *textproto.Error
		if errors.As(err, &tpe) {
			e.Code = tpe.Code
		}
		if err := ctxErr(ctx); err != nil {
			e.cause = err
		}
		return e
	}
	c.sc = sc
	return nil
}

func (c *conn) send(ctx context.Context, m *gomail.Msg) (Result, bool, error) {
	c.ctx = ctx
	if c.cc != nil {
		c.cc.bind(ctx)
	}
	defer func() {
		c.ctx = nil
		if c.cc != nil && !c.cc.unbind() {
			c.discard() // ctx fired while the connection was in use
		}
	}()
	if err := ctx.Err(); err != nil {
		return Result{}, true, ctxError("send", err)
	}
	fresh := false
	if c.sc == nil {
		if err := c.connect(ctx); err != nil {
			return Result{}, true, err
		}
		fresh = true
	}
	err := c.gm.SendWithSMTPClient(c.sc, m)
	var se *gomail.SendError
	if err != nil && !fresh && errors.As(err, &se) && stale(se) {
		// The idle connection is gone (server timeout or restart). Nothing
		// was sent on it: dial again and send once more.
		c.discard()
		if err := c.connect(ctx); err != nil {
			return Result{}, true, err
		}
		err = c.gm.SendWithSMTPClient(c.sc, m)
	}
	return c.result(ctx, m, err)
}

// stale reports whether a send failed because the reused connection had
// died while idle, before anything of the message was sent: go-mail's
// connection check failed (ErrConnCheck), or the first command (MAIL FROM)
// got no SMTP answer at all, or got 421: a server closing an idle
// connection says "421 4.4.2 Idle timeout" before it hangs up (go-smtp,
// Postfix, Exim), and that reply is what the next MAIL FROM reads.
func stale(se *gomail.SendError) bool {
	return se.Reason == gomail.ErrConnCheck || (se.Reason == gomail.ErrSMTPMailFrom && (se.ErrorCode() == 0 || se.ErrorCode() == 421))
}

var queuedAsRE = regexp.MustCompile(`(?i)\bqueued as ([A-Za-z0-9._-]+)`)

// result classifies the outcome of one send.
func (c *conn) result(ctx context.Context, m *gomail.Msg, err error) (Result, bool, error) {
	if err == nil || m.IsDelivered() {
		// IsDelivered with an error: the server accepted the message and
		// only the RSET after it failed. It is sent; the connection is not
		// trusted any more.
		if err != nil {
			c.discard()
		}
		reply := m.ServerResponse()
		res := Result{Reply: redact(reply, c.p.secrets...)}
		if mm := queuedAsRE.FindStringSubmatch(reply); mm != nil {
			res.ProviderID = mm[1]
		}
		return res, false, nil
	}
	var se *gomail.SendError
	if !errors.As(err, &se) {
		c.discard()
		if err := ctxErr(ctx); err != nil {
			return Result{}, true, ctxError("send", err)
		}
		return Result{}, true, &Error{Op: "send", Detail: redact(err.Error(), c.p.secrets...), Temporary: true}
	}
	e := &Error{Op: opName(se.Reason), Code: se.ErrorCode()}
	e.Enhanced, e.Detail = sendErrorDetail(se, e.Code)
	e.Detail = redact(e.Detail, c.p.secrets...)
	switch {
	case e.Code >= 500:
		c.reset()
		return Result{}, false, e
	case e.Code >= 400:
		e.Temporary = true
		c.reset() // after 421 the server has hung up: the RSET fails and the connection is dropped
		return Result{}, true, e
	case se.Reason == gomail.ErrGetSender || se.Reason == gomail.ErrGetRcpts || se.Reason == gomail.ErrNoUnencoded:
		e.Op, e.cause = "message", ErrInvalidMessage
		return Result{}, false, e
	}
	// No SMTP code: the connection dropped, timed out or was cancelled. The
	// message may be retried; the connection is not reused.
	c.discard()
	e.Temporary = true
	if err := ctxErr(ctx); err != nil {
		e.cause = err
		e.Detail = "cancelled: " + err.Error()
	}
	return Result{}, true, e
}

// reset aborts the current transaction after a rejected command, dropping
// the connection if even that fails.
func (c *conn) reset() {
	if c.sc == nil {
		return
	}
	if err := c.sc.Reset(); err != nil {
		c.discard()
	}
}

// discard closes the connection without ceremony.
func (c *conn) discard() {
	if c.cc != nil {
		c.cc.unbind()
		_ = c.cc.Conn.Close()
		c.cc = nil
	}
	c.sc = nil
}

// quit ends the SMTP session politely.
func (c *conn) quit() error {
	if c.sc == nil {
		c.discard()
		return nil
	}
	defer c.discard()
	if err := c.sc.UpdateDeadline(5 * time.Second); err != nil {
		return err
	}
	return c.sc.Quit()
}

func opName(r gomail.SendErrReason) string {
	switch r {
	case gomail.ErrSMTPMailFrom:
		return "MAIL FROM"
	case gomail.ErrSMTPRcptTo:
		return "RCPT TO"
	case gomail.ErrSMTPData, gomail.ErrWriteContent, gomail.ErrSMTPDataClose:
		return "DATA"
	case gomail.ErrConnCheck:
		return "connection check"
	}
	return "send"
}

var enhancedRE = regexp.MustCompile(`^[245]\.\d{1,3}\.\d{1,3}\b`)

// sendErrorDetail extracts the enhanced status code and the server's text
// from a SendError, without the recipient list and message id that its
// Error method appends.
func sendErrorDetail(se *gomail.SendError, code int) (enhanced, detail string) {
	s := se.Error()
	for _, marker := range []string{", affected recipient(s): ", ", affected message ID: "} {
		if i := strings.Index(s, marker); i >= 0 {
			s = s[:i]
		}
	}
	s = strings.TrimPrefix(s, se.Reason.String())
	s = strings.TrimSpace(strings.TrimPrefix(s, ":"))
	if code != 0 {
		s = strings.TrimSpace(strings.TrimPrefix(s, strconv.Itoa(code)))
	}
	enhanced = se.EnhancedStatusCode()
	if enhanced == "" {
		enhanced = enhancedRE.FindString(s)
	}
	if enhanced != "" {
		s = strings.TrimSpace(strings.TrimPrefix(s, enhanced))
	}
	return enhanced, s
}

// ctxErr is ctx.Err(), or DeadlineExceeded as soon as the deadline has
// passed: a read that the deadline interrupted may return before the ctx
// itself reports it.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func ctxError(op string, err error) *Error {
	return &Error{Op: op, Detail: "cancelled: " + err.Error(), Temporary: true, cause: err}
}

// ctxConn lets a context interrupt a connection used by code that only
// knows deadlines (go-mail's SMTP client): while bound to a ctx, every
// deadline set on it is capped by the ctx's deadline, and cancelling the
// ctx sets a deadline in the past, failing the pending read or write.
type ctxConn struct {
	net.Conn

	mu      sync.Mutex
	limit   time.Time // the bound ctx's deadline, zero if none
	expired bool      // the bound ctx is done
	stop    func() bool
}

var longAgo = time.Unix(1, 0)

func (c *ctxConn) bind(ctx context.Context) {
	if ctx == nil {
		return
	}
	c.mu.Lock()
	c.limit, _ = ctx.Deadline()
	c.expired = false
	c.mu.Unlock()
	c.stop = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.expired = true
		_ = c.Conn.SetDeadline(longAgo)
	})
}

// unbind detaches the ctx. It reports false when the ctx fired while bound:
// the connection was interrupted and must not be reused.
func (c *ctxConn) unbind() bool {
	ok := true
	if c.stop != nil {
		ok = c.stop()
		c.stop = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expired {
		ok = false
	}
	c.limit = time.Time{}
	return ok
}

func (c *ctxConn) clamp(t time.Time) time.Time {
	if c.expired {
		return longAgo
	}
	if !c.limit.IsZero() && (t.IsZero() || c.limit.Before(t)) {
		return c.limit
	}
	return t
}

func (c *ctxConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetDeadline(c.clamp(t))
}

func (c *ctxConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetReadDeadline(c.clamp(t))
}

func (c *ctxConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.SetWriteDeadline(c.clamp(t))
}
