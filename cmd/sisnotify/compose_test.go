package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The compose file is what operators start from: Docker must accept it, and
// it must keep the properties the design promises.
func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	for _, want := range []string{
		`"--appendonly", "yes"`, `"--maxmemory-policy", "noeviction"`, // Redis keeps its queues
		"axllent/mailpit", `command: ["serve"]`, "SISNOTIFY_SIS_URL: postgres://sis_reader:", // a read-only SIS role
		"SISNOTIFY_HTTP_PASSWORD_FILE", // secrets as files
	} {
		if !strings.Contains(s, want) {
			t.Errorf("docker-compose.yml lacks %s", want)
		}
	}
	var cmd *exec.Cmd
	switch {
	case exec.Command("docker", "compose", "version").Run() == nil:
		cmd = exec.Command("docker", "compose", "-f", "../../docker-compose.yml", "config", "-q")
	default:
		path, err := exec.LookPath("docker-compose")
		if err != nil {
			t.Skip("neither `docker compose` nor docker-compose is installed (.ci/run installs docker-compose)")
		}
		cmd = exec.Command(path, "-f", "../../docker-compose.yml", "config", "-q")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
}
