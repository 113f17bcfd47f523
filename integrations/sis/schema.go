package sis

import _ "embed"

// ReferenceSchema is reference-schema.sql: the SIS tables and columns the
// worker reads (the contract of docs/sis.md, "Connecting a university's
// SIS"). Tests and the demo create it in a throwaway database.
//
// The contract is strict: the worker reads every column it names, and a
// SIS (or view) that lacks one fails the night's sync with an error that
// names the table and the column, before anything is written. A column
// added to the contract (sis.travel_requests.reason) is therefore one that
// a university's views must supply, as NULL when the SIS does not keep it.
//
//go:embed reference-schema.sql
var ReferenceSchema string
