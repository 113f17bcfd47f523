package jobs

// SetHashChanges sets how many changed rows s's reads by hashes gather
// before they read the table in full; below 0, s reads every table in
// full.
func SetHashChanges(s *Sync, n int) { s.hashChanges = n }
