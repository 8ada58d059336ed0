// Package grid is feederd's outage logic on the feeders of
// internal/topology: it places outages at the most upstream dark device,
// counts the customers of the sections below it, follows partial
// restorations, keeps the IEEE 1366 accumulators and their durable state.
// The tree it walks is the topology's, the same one detection walks and
// rtusim simulates; grid adds only what changes as the grid does.
package grid
