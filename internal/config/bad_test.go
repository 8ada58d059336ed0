package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readRepo reads paths relative to the repository root, so that errors name
// files as they would for a feederd started there.
func readRepo(p string) ([]byte, error) {
	if filepath.IsAbs(p) {
		return nil, errors.New("test reads only repository files")
	}
	return os.ReadFile(filepath.Join("..", "..", p))
}

func noEnv(string) string { return "" }

// TestBadConfigs maps every fixture under testdata/config/bad to the exact
// text of the error it must produce.
func TestBadConfigs(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"address_and_register.yaml", "testdata/config/bad/address_and_register.yaml:13: devices[0].points[0].register: set address (0-based) or register (1-based), not both"},
		{"address_out_of_range.yaml", "testdata/config/bad/address_out_of_range.yaml:13: devices[0].points[0].address: float32 at address 65535 would end at address 65536, beyond 65535"},
		{"alerting_active_for.yaml", "testdata/config/bad/alerting_active_for.yaml:6: alerting.active_for: active_for 3m0s must be at least 2 x resend_interval 2m0s, or alerts expire between re-sends"},
		{"alerting_name_duplicate.yaml", `testdata/config/bad/alerting_name_duplicate.yaml:8: alerting.webhooks[0].name: duplicate receiver name "alertmanager-0" (alerting.alertmanagers[0], line 5)`},
		{"alerting_name_invalid.yaml", `testdata/config/bad/alerting_name_invalid.yaml:6: alerting.webhooks[0].name: invalid receiver name "service desk" (want [A-Za-z0-9_.-]+)`},
		{"alerting_no_receivers.yaml", "testdata/config/bad/alerting_no_receivers.yaml:3: alerting: no receivers: list alertmanagers or webhooks, or omit the block"},
		{"alerting_queue_size.yaml", "testdata/config/bad/alerting_queue_size.yaml:5: alerting.queue_size: queue_size 0 out of range 1..1000000"},
		{"alerting_resend_interval.yaml", "testdata/config/bad/alerting_resend_interval.yaml:5: alerting.resend_interval: must be > 0, got 0s"},
		{"alerting_resolved_for.yaml", "testdata/config/bad/alerting_resolved_for.yaml:5: alerting.resolved_for: must be >= 0, got -1m0s"},
		{"alerting_secret_both.yaml", "testdata/config/bad/alerting_secret_both.yaml:7: alerting.webhooks[0].secret_file: set secret_env or secret_file, not both"},
		{"alerting_secret_env_unset.yaml", "testdata/config/bad/alerting_secret_env_unset.yaml:6: alerting.webhooks[0].secret_env: environment variable FEEDERD_NO_SUCH_VAR is not set or empty"},
		{"alerting_secret_file_empty.yaml", `testdata/config/bad/alerting_secret_file_empty.yaml:6: alerting.webhooks[0].secret_file: secret file "empty.key" is empty`},
		{"alerting_secret_file_missing.yaml", `testdata/config/bad/alerting_secret_file_missing.yaml:6: alerting.webhooks[0].secret_file: secret file "no-such.key" not found`},
		{"alerting_secret_literal.yaml", "testdata/config/bad/alerting_secret_literal.yaml:6: alerting.webhooks[0].secret: secrets must come from secret_env or secret_file"},
		{"alerting_timeout.yaml", "testdata/config/bad/alerting_timeout.yaml:5: alerting.timeout: must be > 0, got 0s"},
		{"alerting_unknown_key.yaml", `testdata/config/bad/alerting_unknown_key.yaml:6: alerting.webhooks[0].secret_envv: unknown key "secret_envv" (did you mean "secret_env"?)`},
		{"alerting_url_credentials.yaml", "testdata/config/bad/alerting_url_credentials.yaml:5: alerting.webhooks[0].url: credentials in the url: secrets never live in this file"},
		{"alerting_url_duplicate.yaml", "testdata/config/bad/alerting_url_duplicate.yaml:6: alerting.alertmanagers[1].url: url already listed (line 5)"},
		{"alerting_url_missing.yaml", "testdata/config/bad/alerting_url_missing.yaml:5: alerting.alertmanagers[0].url: required"},
		{"alerting_url_no_host.yaml", `testdata/config/bad/alerting_url_no_host.yaml:5: alerting.alertmanagers[0].url: url "http:///api" has no host`},
		{"alerting_url_scheme.yaml", `testdata/config/bad/alerting_url_scheme.yaml:5: alerting.alertmanagers[0].url: unsupported scheme "tcp" (want http or https)`},
		{"backoff_order.yaml", "testdata/config/bad/backoff_order.yaml:5: poll.backoff_max: backoff_max 1s is shorter than backoff_initial 5s"},
		{"bad_duration.yaml", `testdata/config/bad/bad_duration.yaml:4: poll.timeout: invalid duration "1 sec" (use a Go duration such as 1s or 250ms)`},
		{"bad_parity.yaml", `testdata/config/bad/bad_parity.yaml:6: links[0].serial.parity: parity "X": want N, E or O`},
		{"bad_point_name.yaml", `testdata/config/bad/bad_point_name.yaml:13: devices[0].points[0].name: invalid point name "Phase-A" (want [a-z0-9_]+)`},
		{"bad_url_scheme.yaml", `testdata/config/bad/bad_url_scheme.yaml:5: links[0].url: unsupported scheme "udp" (want tcp, tcp+tls, rtu or rtuovertcp)`},
		{"bit_out_of_range.yaml", "testdata/config/bad/bit_out_of_range.yaml:13: devices[0].points[0].bit: bit 16 out of range 0..15"},
		{"bit_twice.yaml", `testdata/config/bad/bit_twice.yaml:13: devices[0].points[0].bit: bit 0 of holding 10 is already point "breaker_closed" (profile "relay")`},
		{"bool_on_register.yaml", "testdata/config/bad/bool_on_register.yaml:13: devices[0].points[0].type: type bool needs a coil or discrete_input table, not holding"},
		{"bucket_missing.yaml", `testdata/config/bad/bucket_missing.yaml:3: influx.bucket: required ("db/rp" for InfluxDB 1.8)`},
		{"critical_in_two_sections.yaml", `testdata/config/bad/critical_in_two_sections.yaml:22: feeders[1].sections[0].critical[0].name: customer "Mercy Hospital" is already in a section (line 16): a customer is in one section only`},
		{"critical_kind.yaml", `testdata/config/bad/critical_kind.yaml:13: feeders[0].sections[0].critical[0].kind: unknown kind "pump" (want hospital | life_support | water | emergency | other)`},
		{"critical_over_customers.yaml", `testdata/config/bad/critical_over_customers.yaml:13: feeders[0].sections[0].critical: 1 critical customers but 0 customers`},
		{"feeder_duplicate.yaml", `testdata/config/bad/feeder_duplicate.yaml:13: feeders[2].id: duplicate feeder "F101" (first at line 11)`},
		{"feeder_unknown.yaml", `testdata/config/bad/feeder_unknown.yaml:11: feeders[0].id: no device is on feeder "F999"`},
		{"section_customers_missing.yaml", `testdata/config/bad/section_customers_missing.yaml:13: feeders[0].sections[0].customers: required`},
		{"section_customers_negative.yaml", `testdata/config/bad/section_customers_negative.yaml:13: feeders[0].sections[0].customers: -3 is negative`},
		{"section_duplicate.yaml", `testdata/config/bad/section_duplicate.yaml:14: feeders[0].sections[1].id: duplicate section id "S1" (first at line 13)`},
		{"section_fed_by_other_feeder.yaml", `testdata/config/bad/section_fed_by_other_feeder.yaml:13: feeders[0].sections[0].fed_by: device "C" is on feeder "F102", not "F101"`},
		{"section_not_fed.yaml", `testdata/config/bad/section_not_fed.yaml:13: feeders[0].sections[0].fed_by: required`},
		{"tie_same_feeder.yaml", `testdata/config/bad/tie_same_feeder.yaml:13: feeders[0].ties[0].device: device "B" is on this feeder: a tie comes from another feeder`},
		{"tie_to_other_feeder.yaml", `testdata/config/bad/tie_to_other_feeder.yaml:13: feeders[0].ties[0].to: device "C" is on feeder "F102", not "F101"`},
		{"tie_unknown_device.yaml", `testdata/config/bad/tie_unknown_device.yaml:13: feeders[0].ties[0].device: unknown device "Z"`},
		{"detect_band_persistence.yaml", "testdata/config/bad/detect_band_persistence.yaml:4: detect.band_persistence: 0s is outside 1s..10m"},
		{"detect_comm_loss_polls.yaml", "testdata/config/bad/detect_comm_loss_polls.yaml:4: detect.comm_loss_polls: must be >= 1, got 0"},
		{"detect_hysteresis_crosses.yaml", "testdata/config/bad/detect_hysteresis_crosses.yaml:5: detect.hysteresis: sag_threshold + hysteresis (0.9 + 0.1) must stay below 1 pu"},
		{"detect_interruption_above_sag.yaml", "testdata/config/bad/detect_interruption_above_sag.yaml:5: detect.interruption_threshold: interruption_threshold 0.9 must be below sag_threshold 0.9"},
		{"detect_momentary_max.yaml", "testdata/config/bad/detect_momentary_max.yaml:5: detect.momentary_max: momentary_max 2m0s must be shorter than temporary_max 1m0s"},
		{"detect_not_finite.yaml", "testdata/config/bad/detect_not_finite.yaml:4: detect.overvoltage_max: must be a finite number, got +Inf"},
		{"detect_range_a_inverted.yaml", "testdata/config/bad/detect_range_a_inverted.yaml:4: detect.range_a: low 1.05 is not below high 0.95"},
		{"detect_range_b_narrow.yaml", "testdata/config/bad/detect_range_b_narrow.yaml:5: detect.range_b: range_b 0.96..1.0583 does not contain range_a 0.95..1.05"},
		{"detect_sag_threshold.yaml", "testdata/config/bad/detect_sag_threshold.yaml:4: detect.sag_threshold: 1 must be below 1 pu"},
		{"detect_swell_threshold.yaml", "testdata/config/bad/detect_swell_threshold.yaml:4: detect.swell_threshold: 1 must be above 1 pu"},
		{"detect_range_a_low.yaml", "testdata/config/bad/detect_range_a_low.yaml:5: detect.range_a.low: 1 must be below 1 pu"},
		{"detect_range_a_high.yaml", "testdata/config/bad/detect_range_a_high.yaml:5: detect.range_a.high: 0.99 must be above 1 pu"},
		{"detect_range_b_low.yaml", "testdata/config/bad/detect_range_b_low.yaml:5: detect.range_b.low: must be > 0, got 0"},
		{"detect_range_b_inverted.yaml", "testdata/config/bad/detect_range_b_inverted.yaml:5: detect.range_b: low 1.1 is not below high 0.9"},
		{"detect_band_hysteresis_negative.yaml", "testdata/config/bad/detect_band_hysteresis_negative.yaml:5: detect.band_hysteresis: must be >= 0, got -0.01"},
		{"detect_band_hysteresis_wide.yaml", "testdata/config/bad/detect_band_hysteresis_wide.yaml:5: detect.band_hysteresis: band_hysteresis 0.05 must be less than the distance from 1 pu to either end of range_a 0.95..1.05"},
		{"detect_interruption_threshold.yaml", "testdata/config/bad/detect_interruption_threshold.yaml:5: detect.interruption_threshold: must be > 0, got 0"},
		{"detect_hysteresis_negative.yaml", "testdata/config/bad/detect_hysteresis_negative.yaml:5: detect.hysteresis: must be >= 0, got -0.01"},
		{"detect_hysteresis_swell.yaml", "testdata/config/bad/detect_hysteresis_swell.yaml:5: detect.swell_threshold: swell_threshold - hysteresis (1.01 - 0.02) must stay above 1 pu"},
		{"detect_hysteresis_interruption.yaml", "testdata/config/bad/detect_hysteresis_interruption.yaml:5: detect.interruption_threshold: interruption_threshold + hysteresis (0.89 + 0.02) must not exceed sag_threshold 0.9"},
		{"detect_undervoltage_min.yaml", "testdata/config/bad/detect_undervoltage_min.yaml:5: detect.undervoltage_min: undervoltage_min 0.95 must be at least interruption_threshold 0.1 and below sag_threshold 0.9"},
		{"detect_overvoltage_max.yaml", "testdata/config/bad/detect_overvoltage_max.yaml:5: detect.overvoltage_max: overvoltage_max 1.05 must be above swell_threshold 1.1"},
		{"detect_instantaneous_max_zero.yaml", "testdata/config/bad/detect_instantaneous_max_zero.yaml:5: detect.instantaneous_max: must be > 0, got 0s"},
		{"detect_instantaneous_max_order.yaml", "testdata/config/bad/detect_instantaneous_max_order.yaml:5: detect.instantaneous_max: instantaneous_max 4s must not exceed momentary_max 3s"},
		{"detect_reclose_window.yaml", "testdata/config/bad/detect_reclose_window.yaml:5: detect.reclose_window: must be > 0, got 0s"},
		{"detect_lockout_after_zero.yaml", "testdata/config/bad/detect_lockout_after_zero.yaml:5: detect.lockout_after: must be > 0, got 0s"},
		{"detect_lockout_after_order.yaml", "testdata/config/bad/detect_lockout_after_order.yaml:5: detect.lockout_after: lockout_after 6m0s must not exceed reclose_window 5m0s"},
		{"detect_comm_loss_after.yaml", "testdata/config/bad/detect_comm_loss_after.yaml:5: detect.comm_loss_after: must be > 0, got 0s"},
		{"detect_sustained_after.yaml", "testdata/config/bad/detect_sustained_after.yaml:5: detect.sustained_after: must be > 0, got 0s"},
		{"detect_two_rules_one_key.yaml", "testdata/config/bad/detect_two_rules_one_key.yaml:5: detect.interruption_threshold: interruption_threshold + hysteresis (0.885 + 0.02) must not exceed sag_threshold 0.9; undervoltage_min 0.8 must be at least interruption_threshold 0.885 and below sag_threshold 0.9"},
		{"dup_device_id.yaml", `testdata/config/bad/dup_device_id.yaml:12: devices[1].id: duplicate device id "F101-R1" (first at line 7)`},
		{"dup_key.yaml", "testdata/config/bad/dup_key.yaml:5: poll.interval: duplicate key (first at line 4)"},
		{"dup_link_id.yaml", `testdata/config/bad/dup_link_id.yaml:6: links[1].id: duplicate link id "gw" (first at line 4)`},
		{"dup_link_url.yaml", `testdata/config/bad/dup_link_url.yaml:7: links[1].url: url already used by link "gw" (line 4): one link per endpoint`},
		{"dup_role.yaml", `testdata/config/bad/dup_role.yaml:13: devices[0].points[0].role: duplicate role breaker_closed: already point "breaker_closed" (profile "relay")`},
		{"dup_unit.yaml", `testdata/config/bad/dup_unit.yaml:14: devices[1].unit: unit 1 on link "gw" is already device "F101-R1" (line 7)`},
		{"empty.yaml", "testdata/config/bad/empty.yaml:1: the file is empty"},
		{"field_clash.yaml", `testdata/config/bad/field_clash.yaml:13: devices[0].points[0].name: point "trip_count" would write InfluxDB field "trip_count", as point "trips" does (profile "relay")
testdata/config/bad/field_clash.yaml:14: devices[0].points[1].name: point "status_q" would write InfluxDB field "status_q", the quality field of point "status" (profile "relay")
testdata/config/bad/field_clash.yaml:15: devices[0].points[2].name: point "seq" would write InfluxDB field "seq", which every poll line has`},
		{"float_as_int.yaml", `testdata/config/bad/float_as_int.yaml:9: devices[0].unit: want an integer, got "1.5"`},
		{"http_public_no_token.yaml", "testdata/config/bad/http_public_no_token.yaml:4: http.listen: 0.0.0.0:9108 is not a loopback address: the service desk there needs a token (token_env or token_file)"},
		{"http_tls_half.yaml", "testdata/config/bad/http_tls_half.yaml:3: http.tls_key_file: set both tls_cert_file and tls_key_file, or neither"},
		{"http_tls_missing.yaml", `testdata/config/bad/http_tls_missing.yaml:4: http.tls_cert_file: file "no-such.crt" not found`},
		{"http_token_file_empty.yaml", `testdata/config/bad/http_token_file_empty.yaml:5: http.token_file: token file "empty.key" is empty`},
		{"http_token_literal.yaml", "testdata/config/bad/http_token_literal.yaml:5: http.token: secrets must come from token_env or token_file"},
		{"influx_bad_scheme.yaml", `testdata/config/bad/influx_bad_scheme.yaml:4: influx.url: unsupported scheme "udp" (want http or https)`},
		{"influx_spool_budget.yaml", "testdata/config/bad/influx_spool_budget.yaml:6: influx.spool_budget_mb: must be 1..1073741824, got 0"},
		{"influx_spool_fsync.yaml", `testdata/config/bad/influx_spool_fsync.yaml:6: influx.spool_fsync: want "batch" or a duration > 0, got "often"`},
		{"influx_credentials_in_url.yaml", "testdata/config/bad/influx_credentials_in_url.yaml:4: influx.url: credentials in the url: secrets must come from token_env or token_file"},
		{"interval_below_poll_timeout.yaml", "testdata/config/bad/interval_below_poll_timeout.yaml:12: devices[0].interval: interval 500ms is shorter than poll.timeout 1s: set a shorter timeout for the device"},
		{"interval_1ns.yaml", `testdata/config/bad/interval_1ns.yaml:4: poll.interval: must be at least 10ms, got 1ns
testdata/config/bad/interval_1ns.yaml:6: poll.backoff_initial: must be at least 10ms, got 1ns
testdata/config/bad/interval_1ns.yaml:11: links[0].backoff_initial: must be at least 10ms, got 1µs
testdata/config/bad/interval_1ns.yaml:19: devices[0].interval: must be at least 10ms, got 5ms`},
		{"influx_queue_size_huge.yaml", "testdata/config/bad/influx_queue_size_huge.yaml:6: influx.queue_size: queue_size 9200000000000000000 is more than 5000000 lines"},
		{"not_finite.yaml", `testdata/config/bad/not_finite.yaml:12: devices[0].nominal_voltage: must be a finite number, got +Inf
testdata/config/bad/not_finite.yaml:13: devices[0].pt_ratio: must be a finite number, got NaN
testdata/config/bad/not_finite.yaml:15: devices[0].points[0].scale: must be a finite number, got NaN
testdata/config/bad/not_finite.yaml:16: devices[0].points[1].offset: must be a finite number, got -Inf`},
		{"pipeline_memory.yaml", "testdata/config/bad/pipeline_memory.yaml:5: pipeline.ring_size: 7 rings of 4194304 samples need 1120 MiB, more than the 1024 MiB allowed: lower ring_size or shards"},
		{"interval_zero.yaml", "testdata/config/bad/interval_zero.yaml:4: poll.interval: must be > 0, got 0s"},
		{"label_shadow.yaml", `testdata/config/bad/label_shadow.yaml:12: devices[0].labels.feeder: label "feeder" is reserved (feederd sets feeder, device, point, unit and role)`},
		{"many_errors.yaml", `testdata/config/bad/many_errors.yaml:4: poll.interval: must be > 0, got -1s
testdata/config/bad/many_errors.yaml:8: links[0].tls: only for tcp+tls:// links
testdata/config/bad/many_errors.yaml:12: devices[0].unit: unit 300 out of range 0..247
testdata/config/bad/many_errors.yaml:14: devices[0].feeder: required
testdata/config/bad/many_errors.yaml:15: devices[0].labels.Region: invalid label key "Region" (want [a-z_]+)
testdata/config/bad/many_errors.yaml:19: devices[1].profile: unknown profile "nope"`},
		{"max_registers_too_small.yaml", `testdata/config/bad/max_registers_too_small.yaml:12: devices[0].quirks.max_registers: max_registers 3 is less than the 4 registers of point "e"`},
		{"nominal_voltage_missing.yaml", "testdata/config/bad/nominal_voltage_missing.yaml:7: devices[0].nominal_voltage: required: the device has voltage points"},
		{"overlap_same_type.yaml", `testdata/config/bad/overlap_same_type.yaml:14: devices[0].points[1].address: input 101..102 as float32 ABCD overlaps point "p1" (input 100..101 as float32 ABCD, line 13)`},
		{"overlap_type.yaml", `testdata/config/bad/overlap_type.yaml:13: devices[0].points[0].address: holding 21 as uint16 overlaps point "trips" (holding 20..21 as uint32 ABCD, profile "relay")`},
		{"pipeline_drop_policy.yaml", `testdata/config/bad/pipeline_drop_policy.yaml:4: pipeline.drop_policy: unknown drop_policy "latest" (want oldest or newest)`},
		{"pipeline_ring_size.yaml", "testdata/config/bad/pipeline_ring_size.yaml:4: pipeline.ring_size: ring_size 60000 is not a power of two (try 65536)"},
		{"pipeline_ring_size_range.yaml", "testdata/config/bad/pipeline_ring_size_range.yaml:4: pipeline.ring_size: ring_size 512 out of range 1024..4194304"},
		{"point_name_clash.yaml", `testdata/config/bad/point_name_clash.yaml:13: devices[0].points[0].name: duplicate point name "trips" (profile "relay")`},
		{"profile_errors.yaml", `testdata/config/profiles/broken.yaml:3: points[0].type: unknown type "flaot32"
testdata/config/profiles/broken.yaml:4: points[1].addres: unknown key "addres" (did you mean "address"?)`},
		{"profile_missing.yaml", `testdata/config/bad/profile_missing.yaml:3: profiles[1]: profile file "../profiles/nope.yaml" not found`},
		{"register_out_of_range.yaml", "testdata/config/bad/register_out_of_range.yaml:13: devices[0].points[0].register: register 0 out of range 1..65536"},
		{"register_type_on_bit_table.yaml", "testdata/config/bad/register_type_on_bit_table.yaml:13: devices[0].points[0].type: type float32 needs a holding or input table, not coil"},
		{"rtu_no_serial.yaml", "testdata/config/bad/rtu_no_serial.yaml:4: links[0].serial: required for rtu:// links (baud, data_bits, parity, stop_bits)"},
		{"rtu_serial_incomplete.yaml", `testdata/config/bad/rtu_serial_incomplete.yaml:6: links[0].serial.data_bits: required for rtu:// links
testdata/config/bad/rtu_serial_incomplete.yaml:6: links[0].serial.stop_bits: required for rtu:// links`},
		{"rtu_two_slashes.yaml", `testdata/config/bad/rtu_two_slashes.yaml:5: links[0].url: url "rtu://dev/ttyS0": want rtu:///dev/ttyX (three slashes, then the device path)`},
		{"rtuovertcp_no_baud.yaml", "testdata/config/bad/rtuovertcp_no_baud.yaml:6: links[0].serial.baud: required for rtuovertcp:// links"},
		{"serial_on_tcp.yaml", "testdata/config/bad/serial_on_tcp.yaml:6: links[0].serial: only for rtu:// and rtuovertcp:// links"},
		{"string_no_length.yaml", "testdata/config/bad/string_no_length.yaml:13: devices[0].points[0].length: required for type string (registers)"},
		{"poll_timeout_over_interval.yaml", "testdata/config/bad/poll_timeout_over_interval.yaml:5: poll.timeout: timeout 2s must not exceed interval 1s"},
		{"syntax_error.yaml", "testdata/config/bad/syntax_error.yaml:3: did not find expected ',' or ']'"},
		{"timeout_ge_interval.yaml", "testdata/config/bad/timeout_ge_interval.yaml:13: devices[0].timeout: timeout 1s must be shorter than interval 1s"},
		{"tls_missing.yaml", "testdata/config/bad/tls_missing.yaml:4: links[0].tls: required for tcp+tls:// links (cert, key, ca)"},
		{"tls_on_tcp.yaml", "testdata/config/bad/tls_on_tcp.yaml:6: links[0].tls: only for tcp+tls:// links"},
		{"token_env_unset.yaml", "testdata/config/bad/token_env_unset.yaml:6: influx.token_env: environment variable FEEDERD_NO_SUCH_VAR is not set or empty"},
		{"token_in_yaml.yaml", "testdata/config/bad/token_in_yaml.yaml:6: influx.token: secrets must come from token_env or token_file"},
		{"too_many_labels.yaml", "testdata/config/bad/too_many_labels.yaml:12: devices[0].labels: 9 labels, at most 8 allowed"},
		{"two_sources.yaml", "testdata/config/bad/two_sources.yaml:18: devices[2].upstream: feeder F101 has 2 devices without upstream (F101-BRK, F101-X): exactly one is its source"},
		{"unit0_on_rtu.yaml", "testdata/config/bad/unit0_on_rtu.yaml:10: devices[0].unit: unit 0 is broadcast on serial lines: only tcp:// and tcp+tls:// links may use it"},
		{"unit_out_of_range.yaml", "testdata/config/bad/unit_out_of_range.yaml:9: devices[0].unit: unit 248 out of range 0..247"},
		{"unknown_key.yaml", `testdata/config/bad/unknown_key.yaml:4: poll.intervall: unknown key "intervall" (did you mean "interval"?)`},
		{"unknown_kind.yaml", `testdata/config/bad/unknown_kind.yaml:12: devices[0].kind: unknown kind "relay" (want breaker, recloser, sectionalizer, switch, sensor or meter)`},
		{"unknown_link.yaml", `testdata/config/bad/unknown_link.yaml:8: devices[0].link: unknown link "gw2"`},
		{"unknown_profile.yaml", `testdata/config/bad/unknown_profile.yaml:10: devices[0].profile: unknown profile "sel751"`},
		{"unknown_role.yaml", `testdata/config/bad/unknown_role.yaml:13: devices[0].points[0].role: unknown role "voltge_a"`},
		{"unknown_type.yaml", `testdata/config/bad/unknown_type.yaml:14: devices[0].points[1].type: unknown type "flaot32"`},
		{"upstream_cycle.yaml", "testdata/config/bad/upstream_cycle.yaml:12: devices[0].upstream: upstream cycle F101-A -> F101-C -> F101-B -> F101-A"},
		{"upstream_other_feeder.yaml", `testdata/config/bad/upstream_other_feeder.yaml:17: devices[1].upstream: device "F102-CB" is on feeder "F102", not "F101"`},
		{"upstream_unknown.yaml", `testdata/config/bad/upstream_unknown.yaml:12: devices[0].upstream: unknown device "F101-CB"`},
		{"url_no_port.yaml", `testdata/config/bad/url_no_port.yaml:5: links[0].url: url "tcp://127.0.0.1" needs host:port`},
		{"wrong_kind.yaml", `testdata/config/bad/wrong_kind.yaml:9: devices[0].unit: want an integer, got "one"`},
	}
	listed := map[string]bool{}
	for _, tc := range tests {
		listed[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			path := "testdata/config/bad/" + tc.file
			m, err := Load(path, LoadOptions{ReadFile: readRepo, Getenv: noEnv})
			if m != nil {
				t.Errorf("Load returned a model along with the error")
			}
			if err == nil {
				t.Fatalf("Load(%s) succeeded, want error:\n%s", path, tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("Load(%s) error:\n got: %s\nwant: %s", path, got, tc.want)
			}
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want *Errors", err)
			}
			if got, want := len(*errs), strings.Count(tc.want, "\n")+1; got != want {
				t.Errorf("got %d errors, want %d", got, want)
			}
		})
	}
	// Every fixture is in the table, so none is left untested.
	files, err := filepath.Glob("../../testdata/config/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("fixture %s has no entry in TestBadConfigs", f)
		}
	}
	if len(files) != len(tests) {
		t.Errorf("%d fixtures, %d table entries", len(files), len(tests))
	}
}
