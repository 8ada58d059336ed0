package grid

import "time"

// Accumulator holds the IEEE 1366 sums of one feeder over one period (the
// calendar year, UTC, of the last event counted). NT is the customers
// served, from the configuration.
type Accumulator struct {
	// Year the sums belong to; a step in a later year starts new sums.
	Year int `json:"year"`
	NT   int `json:"nt"`
	// CI: customers interrupted by sustained interruptions (Σ Ni).
	CI int `json:"ci"`
	// CMI: customer minutes interrupted (Σ ri·Ni).
	CMI float64 `json:"cmi"`
	// MCI: customer momentary interruptions (Σ IMi·Nmi), one per trip.
	MCI int `json:"mci"`
	// MCIe: customer momentary interruption events (Σ IMe·Nmi), a whole
	// reclose sequence or momentary outage counting once.
	MCIe int `json:"mcie"`
}

// roll starts new sums when t is in a later year than the current ones.
func (a *Accumulator) roll(t int64) {
	y := time.Unix(0, t).UTC().Year()
	if y != a.Year {
		*a = Accumulator{Year: y, NT: a.NT}
	}
}

// Add sums b into a (for the system indices); NT adds up too.
func (a Accumulator) Add(b Accumulator) Accumulator {
	a.NT += b.NT
	a.CI += b.CI
	a.CMI += b.CMI
	a.MCI += b.MCI
	a.MCIe += b.MCIe
	return a
}

// Indices are the IEEE 1366 indices of an Accumulator.
type Indices struct {
	SAIFI, SAIDI, CAIDI, MAIFI, MAIFIe float64
}

// Indices computes SAIFI = CI/NT, SAIDI = CMI/NT (minutes), CAIDI =
// SAIDI/SAIFI = CMI/CI (minutes), MAIFI = MCI/NT and MAIFIe = MCIe/NT.
// With no customers every index is 0; CAIDI is 0 with no interruption.
func (a Accumulator) Indices() Indices {
	if a.NT == 0 {
		return Indices{}
	}
	nt := float64(a.NT)
	ix := Indices{
		SAIFI:  float64(a.CI) / nt,
		SAIDI:  a.CMI / nt,
		MAIFI:  float64(a.MCI) / nt,
		MAIFIe: float64(a.MCIe) / nt,
	}
	if a.CI > 0 {
		ix.CAIDI = a.CMI / float64(a.CI)
	}
	return ix
}
