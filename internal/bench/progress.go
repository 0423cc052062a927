package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progressBar redraws one status line on w (a terminal's stderr) a few
// times a second: messages sent and deliveries made against the
// scenario's totals.
type progressBar struct {
	w       io.Writer
	sc      Scenario
	healthy []*receiver
	start   time.Time
	sent    atomic.Int64

	once sync.Once
	quit chan struct{}
	done chan struct{}
}

func startProgress(w io.Writer, sc Scenario, healthy []*receiver) *progressBar {
	p := &progressBar{w: w, sc: sc, healthy: healthy, start: time.Now(), quit: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

func (p *progressBar) loop() {
	defer close(p.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			p.draw()
			fmt.Fprintln(p.w)
			return
		case <-t.C:
			p.draw()
		}
	}
}

// stop draws the final state and ends the line; it may be called twice.
func (p *progressBar) stop() {
	p.once.Do(func() {
		close(p.quit)
		<-p.done
	})
}

func (p *progressBar) draw() {
	total := int64(p.sc.Messages * len(p.healthy))
	sent := p.sent.Load()
	got := delivered(p.healthy)
	// Half the bar is sending, half is delivering.
	frac := 0.5 * float64(sent) / float64(p.sc.Messages)
	if total > 0 {
		frac += 0.5 * float64(got) / float64(total)
	} else {
		frac *= 2
	}
	fmt.Fprint(p.w, "\r"+bar(frac, 30)+fmt.Sprintf(" %3.0f%% %-14s msgs %d/%d  deliveries %d/%d  %.1fs\x1b[K",
		frac*100, p.sc.Name, sent, p.sc.Messages, got, total, time.Since(p.start).Seconds()))
}

// bar renders frac (0..1) as [=====>    ] of the given width.
func bar(frac float64, width int) string {
	frac = min(max(frac, 0), 1)
	n := int(frac * float64(width))
	s := strings.Repeat("=", n)
	if n < width {
		s += ">" + strings.Repeat(" ", width-n-1)
	}
	return "[" + s + "]"
}
