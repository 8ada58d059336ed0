package config

import (
	"reflect"
	"testing"
	"time"
)

// TestAlertingGood loads every alerting key and checks the model, secrets
// included; a file without the block has the defaults and no receivers.
func TestAlertingGood(t *testing.T) {
	env := func(k string) string {
		if k == "FEEDERD_WEBHOOK_SECRET" {
			return "key-from-env"
		}
		return ""
	}
	m, err := Load("testdata/config/good/alerting.yaml", LoadOptions{ReadFile: readRepo, Getenv: env})
	if err != nil {
		t.Fatal(err)
	}
	want := Alerting{
		Alertmanagers: []AlertReceiver{
			{Name: "alertmanager-0", URL: "http://10.0.0.1:9093"},
			{Name: "am-b", URL: "https://am-b.example.net/alertmanager"},
		},
		Webhooks: []AlertReceiver{
			{Name: "desk", URL: "https://desk.example.net/feederd", Secret: NewSecret("key-from-env")},
			{Name: "webhook-1", URL: "http://127.0.0.1:8080/hook", Secret: NewSecret("key-from-file")},
		},
		ResendInterval: 30 * time.Second,
		ActiveFor:      2 * time.Minute,
		ResolvedFor:    0,
		Timeout:        5 * time.Second,
		QueueSize:      500,
	}
	if !reflect.DeepEqual(m.Alerting, want) {
		t.Errorf("Alerting:\n got %+v\nwant %+v", m.Alerting, want)
	}
	for i, s := range []string{"key-from-env", "key-from-file"} {
		if got := m.Alerting.Webhooks[i].Secret.Reveal(); got != s {
			t.Errorf("webhook %d secret %q, want %q", i, got, s)
		}
	}
	if !m.Alerting.Enabled() {
		t.Error("Enabled() = false")
	}

	m, err = Load("testdata/config/good/minimal.yaml", LoadOptions{ReadFile: readRepo})
	if err != nil {
		t.Fatal(err)
	}
	def := Alerting{ResendInterval: time.Minute, ActiveFor: 4 * time.Minute, ResolvedFor: 15 * time.Minute, Timeout: 10 * time.Second, QueueSize: 10000}
	if !reflect.DeepEqual(m.Alerting, def) || m.Alerting.Enabled() {
		t.Errorf("without an alerting block: %+v, want the defaults and no receivers", m.Alerting)
	}
}
