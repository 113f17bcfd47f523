package jobs

// SetHashChanges sets how many changed rows s's reads by hashes gather
// before they read the table in full; below 0, s reads every table in
// full.
func SetHashChanges(s *Sync, n int) { s.hashChanges = n }

// SetCheckEveryRow makes s's checks across tables look at every row on
// every night, not only at the changed rows.
func SetCheckEveryRow(s *Sync) { s.checkEveryRow = true }
