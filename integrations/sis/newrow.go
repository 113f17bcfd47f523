package sis

// NewRow returns a Row holding values, as Stream's callback would receive
// it from the COPY decoder; a nil value is NULL (give []byte{} for an
// empty, non-NULL column). It exists for tests and fuzzing of the code that
// consumes rows (jobs/validate) without a database.
func NewRow(values ...[]byte) *Row {
	r := &Row{fields: make([][]byte, len(values)), null: make([]bool, len(values)), line: 1}
	for i, v := range values {
		r.fields[i], r.null[i] = v, v == nil
	}
	return r
}
