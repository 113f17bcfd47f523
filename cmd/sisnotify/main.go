// Command sisnotify is the International Office's unattended night shift:
// it reads the SIS, works out which migration deadlines are near or missed
// and sends the notices. See README.md; `sisnotify help` lists commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err and maps it to the exit status: 2 for a bad command
// line or configuration, 3 for a night that ran but left deliveries
// pending, 1 for a failure.
func exitCode(err error, stderr *os.File) int {
	if err == nil {
		return 0
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		// One line per problem, each a line of its own.
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stderr, "sisnotify:", line)
		}
	} else {
		fmt.Fprintln(stderr, "sisnotify:", err)
	}
	var ue *UsageError
	var pe *PendingError
	switch {
	case errors.As(err, &ce) || errors.As(err, &ue):
		return 2
	case errors.As(err, &pe):
		return 3
	}
	return 1
}

// PendingError is a night that ran but whose deliveries were not all done
// when run --once stopped waiting: they stay in the outbox and are retried.
type PendingError struct {
	N     int64
	Why   string // the last error classes, "3 temporary (451 …), 2 not tried yet"
	After time.Duration
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("%d notices still pending after %s (%s); they stay in the outbox: `serve` or the next run delivers them", e.N, e.After, e.Why)
}
