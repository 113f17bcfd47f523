// Package simulation runs sisnotify through simulated nights of an
// academic year, with faults, and checks after every night the promises
// the service makes, against an independent record of what was sent.
//
// The world (World) starts as `sisnotify demo` generates it and changes
// each night, drawn from a seed, the way students and the office change
// the SIS. The harness, in this package's tests, runs the real binary
// night after night against real PostgreSQL, Redis, an SMTP server and an
// SMS gateway on loopback, injects a fault drawn from the same seed, and
// checks the invariants; the same seed replays the same world and the same
// faults. Run it with `make simulate` (docs/reliability.md).
package simulation
