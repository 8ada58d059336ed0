package config

import "time"

// The influx block: the InfluxDB sink.

type rawInflux struct {
	URL      string `yaml:"url"`
	Bucket   string `yaml:"bucket"`
	Org      string `yaml:"org"`
	TokenEnv string `yaml:"token_env"`
	// Token is only here to give a better error than "unknown key".
	Token         *string        `yaml:"token"`
	TokenFile     string         `yaml:"token_file"`
	BatchSize     *int           `yaml:"batch_size"`
	FlushInterval *time.Duration `yaml:"flush_interval"`
	QueueSize     *int           `yaml:"queue_size"`
	Timeout       *time.Duration `yaml:"timeout"`
	Measurement   *string        `yaml:"measurement"`
	Gzip          *bool          `yaml:"gzip"`
	SpoolBudgetMB *int64         `yaml:"spool_budget_mb"`
	SpoolFsync    *string        `yaml:"spool_fsync"`
}

func (l *loader) influx(r *rawInflux) Influx {
	if r == nil {
		return Influx{Disabled: true}
	}
	in := l.d.Influx
	in.URL, in.Org, in.Bucket = r.URL, r.Org, r.Bucket
	if r.URL == "" {
		l.s.add("influx.url", "required (omit the influx block to disable the sink)")
	} else {
		l.httpURL("influx.url", r.URL, "credentials in the url: secrets must come from token_env or token_file")
	}
	if r.Bucket == "" {
		l.s.add("influx.bucket", `required ("db/rp" for InfluxDB 1.8)`)
	}
	if r.Token != nil {
		l.s.add("influx.token", "secrets must come from token_env or token_file")
	} else {
		in.Token = l.readSecret("influx", "token", r.TokenEnv, r.TokenFile)
	}
	if r.BatchSize != nil {
		in.BatchSize = *r.BatchSize
		if in.BatchSize <= 0 {
			l.s.add("influx.batch_size", "must be > 0, got %d", in.BatchSize)
		}
	}
	if r.QueueSize != nil {
		in.QueueSize = *r.QueueSize
	}
	if in.QueueSize < in.BatchSize {
		l.s.add("influx.queue_size", "queue_size %d is smaller than batch_size %d", in.QueueSize, in.BatchSize)
	}
	if r.FlushInterval != nil {
		in.FlushInterval = *r.FlushInterval
		l.positive("influx.flush_interval", in.FlushInterval)
	}
	if r.Timeout != nil {
		in.Timeout = *r.Timeout
		l.positive("influx.timeout", in.Timeout)
	}
	if r.Measurement != nil {
		in.Measurement = *r.Measurement
		if !validID(in.Measurement) {
			l.s.add("influx.measurement", "invalid measurement %q (want [A-Za-z0-9_.-]+)", in.Measurement)
		}
	}
	if r.Gzip != nil {
		in.Gzip = *r.Gzip
	}
	if r.SpoolBudgetMB != nil {
		// The upper bound keeps the byte count from overflowing.
		if mb := *r.SpoolBudgetMB; mb < 1 || mb > 1<<30 {
			l.s.add("influx.spool_budget_mb", "must be 1..%d, got %d", 1<<30, mb)
		} else {
			in.SpoolBudget = mb << 20
		}
	}
	if r.SpoolFsync != nil && *r.SpoolFsync != "batch" {
		d, err := time.ParseDuration(*r.SpoolFsync)
		if err != nil || d <= 0 {
			l.s.add("influx.spool_fsync", `want "batch" or a duration > 0, got %q`, *r.SpoolFsync)
		} else {
			in.SpoolFsync = d
		}
	}
	return in
}
