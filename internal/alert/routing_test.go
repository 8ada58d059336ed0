package alert

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/feederd/feederd/internal/testenv"
)

// TestShippedAlertmanagerConfig checks configs/alertmanager.yml with
// Alertmanager's own amtool, and that each of feederd's alerts reaches the
// receiver the file's comments promise.
func TestShippedAlertmanagerConfig(t *testing.T) {
	amtool := testenv.AmtoolPath(t)
	cfg := filepath.Join("..", "..", "configs", "alertmanager.yml")
	if out, err := exec.Command(amtool, "check-config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
	tests := []struct {
		labels []string
		want   string
	}{
		{[]string{"alertname=FeederOutage", "severity=critical", "feeder=F101"}, "service-desk"},
		{[]string{"alertname=CriticalCustomerOutage", "severity=critical", "feeder=F101"}, "service-desk"},
		{[]string{"alertname=VoltageExcursion", "severity=critical", "feeder=F101"}, "service-desk"},
		{[]string{"alertname=VoltageExcursion", "severity=warning", "feeder=F101"}, "grid-operations"},
		{[]string{"alertname=RTUCommsLost", "severity=warning", "feeder=F101", "device=F101-REC"}, "grid-operations"},
		{[]string{"alertname=MomentaryInterruption", "severity=info", "feeder=F101"}, "reliability"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.labels[:2], ","), func(t *testing.T) {
			args := append([]string{"config", "routes", "test", "--config.file=" + cfg}, tc.labels...)
			out, err := exec.Command(amtool, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("amtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tc.want {
				t.Errorf("%v routes to %q, want %q", tc.labels, got, tc.want)
			}
		})
	}
}
