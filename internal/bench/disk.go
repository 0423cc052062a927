package bench

import (
	"os"
	"time"
)

// DiskResult is what the disk probe saw during a scenario. The server
// commits with fsync (synchronous=FULL), so an accepted message waits for
// the disk: when the disk stalls, every message accepted meanwhile waits,
// and a single stall of 100 ms during a 10 s run at 2,000 deliveries/s
// is enough to set the p99. The probe measures the disk under the data
// dir, so that such a run shows as noisy rather than as hookstep's tail.
type DiskResult struct {
	Syncs int `json:"syncs"`
	// Stalls counts the syncs that took StallAfter or longer.
	Stalls int     `json:"stalls"`
	MaxMs  float64 `json:"maxSyncMs"`
	P50Ms  float64 `json:"p50SyncMs"`
}

// StallAfter is how long an fsync takes before the probe counts a stall:
// well above this VM's healthy ones (p50 0.3 ms, max 1.5 ms in a quiet
// 10 s run), and several times the paced scenarios' p99 (4-6 ms), which a
// handful of such syncs moves. (At 50 ms, runs with a 48 ms sync went
// unflagged with a p99 four times the usual.)
const StallAfter = 20 * time.Millisecond

// diskProbe writes and fsyncs a 4 KiB block in dir every interval until
// stopped, timing the syncs. Its load (tens of syncs a second) is small
// next to the server's.
type diskProbe struct {
	stop chan struct{}
	done chan DiskResult
}

func startDiskProbe(dir string, interval time.Duration) (*diskProbe, error) {
	f, err := os.CreateTemp(dir, "disk-probe-")
	if err != nil {
		return nil, err
	}
	p := &diskProbe{stop: make(chan struct{}), done: make(chan DiskResult, 1)}
	go func() {
		defer os.Remove(f.Name())
		defer f.Close()
		block := make([]byte, 4096)
		var syncs []time.Duration
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				p.done <- summarizeSyncs(syncs)
				return
			case <-t.C:
			}
			if _, err := f.WriteAt(block, 0); err != nil {
				continue
			}
			start := time.Now()
			if err := f.Sync(); err == nil {
				syncs = append(syncs, time.Since(start))
			}
		}
	}()
	return p, nil
}

// result stops the probe and returns what it saw.
func (p *diskProbe) result() DiskResult {
	close(p.stop)
	return <-p.done
}

func summarizeSyncs(syncs []time.Duration) DiskResult {
	l := summarize(syncs)
	r := DiskResult{Syncs: l.N, MaxMs: l.Max, P50Ms: l.P50}
	for _, d := range syncs {
		if d >= StallAfter {
			r.Stalls++
		}
	}
	return r
}
