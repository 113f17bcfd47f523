package sis

// NewRow returns a Row holding values, as Stream's callback would receive
// it from the COPY decoder; a nil value is NULL (give []byte{} for an
// empty, non-NULL column). It exists for tests and fuzzing of the code that
// consumes rows (jobs/validate) without a database.
func NewRow(values ...[]byte) *Row {
	r := newRow(len(values))
	r.line = 1
	r.data = []byte{}
	for i, v := range values {
		r.start[i] = int32(len(r.data))
		r.data = append(r.data, v...)
		r.end[i], r.null[i] = int32(len(r.data)), v == nil
	}
	return &r
}
