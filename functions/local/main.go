// Command local runs all of hookstep in one process: the management API and
// dashboard, the delivery workers over a durable SQLite queue, and the
// sweeper. It is what `make run` starts. Configuration comes from
// HOOKSTEP_* environment variables (see config.go and the README).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hookstep/hookstep/events"
	"github.com/hookstep/hookstep/internal/api"
	"github.com/hookstep/hookstep/internal/authtoken"
	"github.com/hookstep/hookstep/internal/dashboard"
	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/localqueue"
	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/play"
	"github.com/hookstep/hookstep/internal/sender"
	"github.com/hookstep/hookstep/internal/sqlite"
	"github.com/hookstep/hookstep/internal/sweeper"
	"github.com/hookstep/hookstep/internal/webhook"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// taskProgress is delivery.Service.TaskProgress: nil, except in tests,
// which pause a background task with it.
var taskProgress func(context.Context, webhook.Task)

func main() {
	// The live heap is small (tens of MB) and under load the allocation
	// rate is high, so the default GOGC=100 collects many times a second.
	// 400 trades some peak RSS for CPU per delivery: make bench
	// (-profile) shows both. An explicit GOGC still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "hookstep:", err)
		os.Exit(1)
	}
}

// run starts the service and blocks until ctx ends, then shuts down
// gracefully. It prints the listening URL (and a generated admin token,
// once) to stdout and logs to logw.
func run(ctx context.Context, getenv func(string) string, stdout, logw io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, logw)
	clock := webhook.SystemClock{}

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	store, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "hookstep.db"), clock)
	if err != nil {
		return err
	}
	defer store.Close()
	// Claims left by a previous process (a crash, or a stop with
	// deliveries claimed or held and not attempted) are due now rather
	// than when they end: holding the data dir's lock, this process is
	// the only one that could hold claims, and its workers have not
	// started.
	if n, err := store.ReleaseClaims(ctx, clock.Now()); err != nil {
		return err
	} else if n > 0 {
		logger.Info("released deliveries claimed by a previous process; they are due now", "deliveries", n)
	}
	if err := seedOnce(ctx, store, cfg.DataDir, clock.Now()); err != nil {
		return err
	}
	tokenHash, err := adminToken(cfg, stdout)
	if err != nil {
		return err
	}
	if cfg.AllowPrivate {
		logger.Warn("private and loopback delivery targets are allowed (HOOKSTEP_ALLOW_PRIVATE_TARGETS=true); set it to false on a shared network")
	}

	// Background work (recover tasks, the queue, the sweeper) stops with
	// ctx and is awaited before the store closes.
	var bg sync.WaitGroup
	defer bg.Wait()
	svc := &delivery.Service{
		Store:    store,
		Sender:   sender.New(sender.Config{Timeout: cfg.HTTPTimeout, AllowPrivate: cfg.AllowPrivate, RequireHTTPS: cfg.RequireHTTPS}),
		Schedule: cfg.Schedule,
		Clock:    clock,
		Logger:   logger,
		Go: func(task func(context.Context)) {
			bg.Add(1)
			go func() { defer bg.Done(); task(ctx) }()
		},
		TaskProgress: taskProgress,
		// Endpoints' throttleRate: their tokens are kept in memory, and
		// the queue holds a throttled delivery back without a worker.
		Throttle: localqueue.NewThrottle(),
	}
	queue := localqueue.New(store, svc.AttemptNext, clock, logger, localqueue.Config{
		Workers: cfg.Workers, Lease: cfg.HTTPTimeout + 30*time.Second,
		// An attempt: the POST's budget, and the reads and the write
		// around it (milliseconds; seconds leave a wide margin).
		AttemptTimeout: cfg.HTTPTimeout + 5*time.Second,
		// One endpoint gets at most half the workers, a slow one (an
		// attempt of a second or more) an eighth, a failing one (its
		// last attempt scheduled a retry) a sixteenth: a hanging
		// receiver cannot stall everybody else's deliveries, nor a retry
		// storm crowd them. Four workers still make a few thousand
		// attempts a second to a receiver that fails fast.
		EndpointShare: max(1, cfg.Workers/2),
		SlowShare:     max(1, cfg.Workers/8),
		FailingShare:  max(1, cfg.Workers/16),
		SlowAfter:     time.Second,
		// Retries coming due within 20 ms of each other are claimed
		// together: a retry storm costs a write per batch.
		Gather: 20 * time.Millisecond,
	})
	svc.Dispatcher = queue
	// Operational webhooks are messages of a reserved app, published
	// and delivered by svc like any other (internal/operational).
	ops := operational.New(operational.Config{Store: store, Publisher: svc, Clock: clock, Logger: logger, Retention: cfg.Retention})
	svc.Operational = ops
	sw := &sweeper.Sweeper{
		Store: store, Dispatch: svc.Dispatch, Clock: clock, Logger: logger,
		DisableAfter: cfg.DisableAfter, RedriveAfter: 2 * time.Minute, Batch: 500,
		Operational: ops,
	}

	// Background tasks a previous process left running (a recover cut
	// short by a stop or a crash) go on from their last progress.
	if n, err := svc.ResumeTasks(ctx, clock.Now()); err != nil {
		return err
	} else if n > 0 {
		logger.Info("resumed background tasks a previous process left running", "tasks", n)
	}

	handler := api.New(api.Config{
		Store: store, Deliveries: svc, Clock: clock, TokenHash: tokenHash, Logger: logger,
		AllowPrivateTargets: cfg.AllowPrivate, RequireHTTPS: cfg.RequireHTTPS, Version: version,
		Retention: cfg.Retention, PublicURL: cfg.PublicURL, Operational: ops,
		Fallback: dashboard.New(dashboard.Config{
			Store: store, Deliveries: svc, Clock: clock, TokenHash: tokenHash, Logger: logger,
			AllowPrivateTargets: cfg.AllowPrivate, RequireHTTPS: cfg.RequireHTTPS,
			Play:      play.NewMemory(clock),
			Retention: cfg.Retention, Operational: ops,
			AppTokens: store, PortalFrameAncestors: cfg.PortalFrameAncestors, PortalName: cfg.PortalName,
		}),
	})
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, logger)
		if err != nil {
			return err
		}
		defer stopPprof()
	}

	bg.Add(2)
	go func() { defer bg.Done(); queue.Run(ctx) }()
	go func() { defer bg.Done(); sweepEvery(ctx, sw, store, clock, cfg.SweepInterval, logger) }()

	fmt.Fprintf(stdout, "hookstep listening on http://%s\n", ln.Addr())
	logger.Info("started", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "schedule", cfg.Schedule.String(), "version", version)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// servePprof serves net/http/pprof on its own listener, apart from the
// API so that profiles are never reachable with the API's address and
// need no token. It is for measuring (make bench); keep it on loopback.
func servePprof(addr string, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	logger.Warn("pprof enabled (HOOKSTEP_PPROF_ADDR)", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}

// sweepEvery runs the sweeper, and purges expired messages and attempts,
// once at start and then every interval until ctx ends.
func sweepEvery(ctx context.Context, sw *sweeper.Sweeper, store *sqlite.Store, clock webhook.Clock, every time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := sw.Sweep(ctx); err != nil && ctx.Err() == nil {
			logger.Error("sweep", "err", err)
		}
		if _, err := store.PurgeExpired(ctx, clock.Now(), 1000); err != nil && ctx.Err() == nil {
			logger.Error("purge expired", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// adminToken returns the hash of the admin token. HOOKSTEP_ADMIN_TOKEN sets
// it; otherwise the hash kept in the data dir is used, and on first start a
// token is generated, its hash kept, and the token printed once.
func adminToken(cfg config, stdout io.Writer) ([32]byte, error) {
	path := filepath.Join(cfg.DataDir, "admin-token.sha256")
	if cfg.AdminToken != "" {
		h := authtoken.Hash(cfg.AdminToken)
		return h, os.WriteFile(path, []byte(authtoken.EncodeHash(h)+"\n"), 0o600)
	}
	b, err := os.ReadFile(path)
	if err == nil {
		h, err := authtoken.DecodeHash(string(b))
		if err != nil {
			return h, fmt.Errorf("%s: %w (delete it to generate a new token)", path, err)
		}
		return h, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return [32]byte{}, err
	}
	token, err := authtoken.Generate()
	if err != nil {
		return [32]byte{}, err
	}
	h := authtoken.Hash(token)
	if err := os.WriteFile(path, []byte(authtoken.EncodeHash(h)+"\n"), 0o600); err != nil {
		return h, err
	}
	fmt.Fprintf(stdout, "admin token (shown once; only its hash is kept in %s):\n  %s\n", path, token)
	return h, nil
}

// lockDataDir makes sure one process at a time uses a data dir: two would
// both run the queue and double every delivery.
func lockDataDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s is in use by another hookstep process", dir)
	}
	return func() { f.Close() }, nil
}

// seedOnce loads the events/ catalog as event types on first start, so a
// newcomer can subscribe right away. A marker file records that it was
// done, so types the user removes later stay removed.
func seedOnce(ctx context.Context, store webhook.Store, dir string, now time.Time) error {
	marker := filepath.Join(dir, "seeded")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if err := seedEventTypes(ctx, store, now); err != nil {
		return err
	}
	return os.WriteFile(marker, []byte("event types of events/eventtypes loaded\n"), 0o600)
}

// seedEventTypes stores the catalog's event types, keeping existing ones.
func seedEventTypes(ctx context.Context, store webhook.Store, now time.Time) error {
	ets, err := events.EventTypes(now)
	if err != nil {
		return err
	}
	for i := range ets {
		if err := store.CreateEventType(ctx, &ets[i]); err != nil && !webhook.IsConflict(err) {
			return fmt.Errorf("seed event type %s: %w", ets[i].Name, err)
		}
	}
	return nil
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if strings.EqualFold(cfg.LogFormat, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
