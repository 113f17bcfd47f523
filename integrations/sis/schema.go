package sis

import _ "embed"

// ReferenceSchema is shared/sis/reference-schema.sql: the SIS tables the
// worker reads. Tests and the demo create it in a throwaway database.
//
//go:embed reference-schema.sql
var ReferenceSchema string
