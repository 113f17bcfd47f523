package testenv

import (
	"bytes"
	"os/exec"
	"sync"
	"syscall"
	"testing"
)

// Process is a program a test runs in the background (the sisnotify
// binary, in the end-to-end tests), its output kept; it is killed when
// the test ends if it still runs.
type Process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

// StartProcess starts path with args and the environment env (KEY=value).
func StartProcess(tb testing.TB, path string, env []string, args ...string) *Process {
	tb.Helper()
	p := &Process{cmd: exec.Command(path, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Write collects the process's stdout and stderr.
func (p *Process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process ended (its *exec.ExitError, or nil); valid once
// Done is closed.
func (p *Process) Err() error { <-p.done; return p.err }

// Output is what the process printed so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Kill SIGKILLs the process and waits for it to end.
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}
