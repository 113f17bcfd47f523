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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err and maps it to the exit status: 2 for a bad command
// line or configuration, 1 for a failure.
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
	if errors.As(err, &ce) || errors.As(err, &ue) {
		return 2
	}
	return 1
}
