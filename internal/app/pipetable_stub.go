package app

import (
	"context"
	"errors"

	"github.com/feederd/feederd/internal/config"
	"github.com/feederd/feederd/internal/pipeline"
)

// Stand-in for the pipeline half of the reload (branch reload-pipe,
// internal/app/pipetable.go), deleted when that is merged.

// applyPipeline makes the running pipeline follow model m. The poller is paused
// by the caller (no Put runs during the call). It drains what the rings hold,
// then swaps detection, outage engines and the encoder, keeping the detection
// state of every device whose ID and detection-relevant config are unchanged.
func applyPipeline(ctx context.Context, p *pipeline.Pipeline, m *config.Model) (pipelineChange, error) {
	return pipelineChange{}, errors.New("pipeline reload not built")
}

type pipelineChange struct{ Kept, Fresh, Removed []string } // device IDs
