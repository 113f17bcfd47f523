package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestOfficeUniversityKey(t *testing.T) {
	f := loadYAML(t, "office:\n  university: KazNU\n")
	if f.Office.University != "KazNU" {
		t.Errorf("office.university = %q, want KazNU", f.Office.University)
	}
	if _, err := parseYAML(t, "office:\n  university: [a, b]\n"); err == nil {
		t.Error("office.university as a list: no error")
	}
}

// The keys a sending night needs, as Missing reports them: every key
// named, in SendingKeys order; the address and hours may come in every
// language instead.
func TestOfficeMissing(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		want       []string
	}{
		{"no file", "", SendingKeys},
		{"complete", "office:\n  university: KazNU\n  address: Room 1\n  hours: 9-18\n  phone: \"+7 727 000 00 00\"\n", nil},
		{"blank values", "office:\n  university: \" \"\n  address: Room 1\n  hours: 9-18\n  phone: \"\"\n", []string{"office.phone", "office.university"}},
		{"address and hours per language", `office:
  university: KazNU
  phone: "+7 727 000 00 00"
  en: {address: Room 1, hours: 9-18}
  ru: {address: Комната 1, hours: 9-18}
  kk: {address: 1 бөлме, hours: 9-18}
`, nil},
		{"a language without the address", `office:
  university: KazNU
  phone: "+7 727 000 00 00"
  hours: 9-18
  en: {address: Room 1}
  ru: {address: Комната 1}
`, []string{"office.address"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := Default()
			if c.yaml != "" {
				f = loadYAML(t, c.yaml)
			}
			if got := f.Office.Missing(); !slices.Equal(got, c.want) {
				t.Errorf("Missing() = %v, want %v", got, c.want)
			}
		})
	}
}

func loadYAML(t *testing.T, yaml string) *File {
	t.Helper()
	f, err := parseYAML(t, yaml)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func parseYAML(t *testing.T, yaml string) (*File, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sisnotify.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}
