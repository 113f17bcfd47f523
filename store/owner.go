// An Owner is a process's identity in PostgreSQL that dies with
// it, so that what the process claims (a notice it is sending) is free the
// moment the process is gone, instead of after a fixed lease.
//
// AcquireOwner takes a new id from the sequence sisnotify.claim_owners and holds
// a session advisory lock on it over a connection of its own. PostgreSQL
// releases the lock when that session ends, which it does when the process
// dies, however it dies (SIGKILL included): a claim that records the id is
// then known to be abandoned by OwnerDead, a condition for SQL. Should the lock's
// connection break while the process lives (a PostgreSQL restart), the
// keeper takes the lock again on a new connection; until it does, the
// process's claims look abandoned, and another process may send those
// notices again: the crash window the delivery guarantees already allow.

package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// namespace is the high 32 bits of every owner's advisory-lock key
// ("SISN"), so that the locks do not meet another application's.
const namespace = 0x5349534E

// keepEvery is how often the keeper checks the lock's connection.
const keepEvery = 2 * time.Second

// Owner is a live process's claim identity. Its methods are safe for
// concurrent use.
type Owner struct {
	id   int64
	db   *sql.DB
	log  *slog.Logger
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex
	conn *sql.Conn
}

// AcquireOwner takes a new owner id and locks it for as long as the process
// lives or until Close.
func AcquireOwner(ctx context.Context, db *sql.DB, log *slog.Logger) (*Owner, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &Owner{db: db, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	if err := db.QueryRowContext(ctx, `SELECT nextval('sisnotify.claim_owners')`).Scan(&o.id); err != nil {
		return nil, fmt.Errorf("claim owner: %w", err)
	}
	if err := o.lock(ctx); err != nil {
		return nil, err
	}
	go o.keep()
	return o, nil
}

// ID is the id claims record (sisnotify.notices.claimed_by).
func (o *Owner) ID() int64 { return o.id }

func (o *Owner) key() int64 { return namespace<<32 | o.id&0xFFFFFFFF }

// lock takes the advisory lock on a new connection of its own.
func (o *Owner) lock(ctx context.Context) error {
	conn, err := o.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("claim owner %d: %w", o.id, err)
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, o.key()).Scan(&ok); err != nil || !ok {
		conn.Close()
		if err == nil {
			err = fmt.Errorf("the lock is held by another session")
		}
		return fmt.Errorf("claim owner %d: lock: %w", o.id, err)
	}
	o.mu.Lock()
	o.conn = conn
	o.mu.Unlock()
	return nil
}

// keep checks the lock's connection and takes the lock again when the
// connection broke.
func (o *Owner) keep() {
	defer close(o.done)
	t := time.NewTicker(keepEvery)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), keepEvery)
		o.mu.Lock()
		conn := o.conn
		o.mu.Unlock()
		var err error
		if conn != nil {
			err = conn.PingContext(ctx)
		}
		if conn == nil || err != nil {
			if conn != nil {
				o.log.Warn("claim owner: the lock's connection broke; taking the lock again", "owner", o.id, "err", err)
				conn.Close()
				o.mu.Lock()
				o.conn = nil
				o.mu.Unlock()
			}
			if err := o.lock(ctx); err != nil {
				o.log.Warn("claim owner: cannot take the lock yet", "owner", o.id, "err", err)
			} else {
				o.log.Info("claim owner: lock taken again", "owner", o.id)
			}
		}
		cancel()
	}
}

// Close releases the lock: the owner's claims are free from then on.
func (o *Owner) Close() error {
	close(o.stop)
	<-o.done
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conn == nil {
		return nil
	}
	_, err := o.conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, o.key())
	if cerr := o.conn.Close(); err == nil {
		err = cerr
	}
	o.conn = nil
	return err
}

// OwnerDead is an SQL condition that holds when the owner whose id is the value
// of col holds no lock in this database: its process is gone. NULL (a
// claim without an owner) is not dead; such claims wait for their lease.
func OwnerDead(col string) string {
	return `(` + col + ` IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_locks l
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.classid = ` + strconv.Itoa(namespace) + `::oid AND l.objid = (` + col + ` & 4294967295)::oid))`
}
