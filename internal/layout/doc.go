// Package layout has no code: its tests keep the project's boundaries.
// Only package worker (and packages under worker/) may import asynq, so
// that task types, payloads, retries and leases are defined once; and only
// package store (and the migrations) may hold SQL against the worker
// database's schema, so that every statement on its tables is in one
// place.
package layout
