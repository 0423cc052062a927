// Command api is the Lambda function behind API Gateway, a REST API or an
// HTTP API (either payload version): every path is proxied to the same
// http.Handler local mode serves. The admin
// token's hash is read from Secrets Manager once per cold start. See
// internal/lambdafn.
//
// Each cold start also seeds the catalog of events/eventtypes, so that the
// event types are there right after a deploy with no manual step (see
// seedCatalog).
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/hookstep/hookstep/events"
	"github.com/hookstep/hookstep/internal/api"
	"github.com/hookstep/hookstep/internal/dashboard"
	"github.com/hookstep/hookstep/internal/lambdafn"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(context.Background(), os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	s, err := lambdafn.Load(getenv, lambdafn.FunctionAPI, lambdafn.WireAPI)
	if err != nil {
		return err
	}
	tokenHash, err := lambdafn.AdminTokenHash(ctx, secretsmanager.NewFromConfig(s.AWS).GetSecretValue, s.Config.AdminTokenSecretARN)
	if err != nil {
		return err
	}
	seedCatalog(ctx, s)
	ancestors, err := dashboard.ParseFrameAncestors(s.Config.PortalFrameAncestors)
	if err != nil {
		return fmt.Errorf("configuration: HOOKSTEP_PORTAL_FRAME_ANCESTORS: %w", err)
	}
	h := api.New(api.Config{
		Store: s.Store, Deliveries: s.Delivery, Clock: s.Clock, TokenHash: tokenHash, Logger: s.Logger,
		AllowPrivateTargets: s.Config.AllowPrivate, RequireHTTPS: s.Config.RequireHTTPS, Version: version,
		Retention: s.Config.Retention, Operational: s.Operational,
		// Portal links carry the stage, as the dashboard's own links do.
		BasePath: lambdafn.RequestStagePath,
		Fallback: dashboard.New(dashboard.Config{
			Store: s.Store, Deliveries: s.Delivery, Clock: s.Clock, TokenHash: tokenHash, Logger: s.Logger,
			AllowPrivateTargets: s.Config.AllowPrivate, RequireHTTPS: s.Config.RequireHTTPS,
			// In the table, so that every Lambda instance sees what a
			// Play URL received.
			Play:      s.Store.Play(),
			BasePath:  lambdafn.RequestStagePath,
			Retention: s.Config.Retention, Operational: s.Operational,
			// The portal's tokens are in the table too, with a TTL.
			AppTokens: s.Store, PortalFrameAncestors: ancestors, PortalName: s.Config.PortalName,
		}),
	})
	lambda.StartWithOptions(lambdafn.ProxyAny(h), lambda.WithContext(ctx))
	return nil
}

// seedTimeout bounds the catalog seed, which runs in the init phase
// (10 s in all).
const seedTimeout = 3 * time.Second

// seedCatalog creates the event types of events/eventtypes that this
// table never had (dynamo.Store.SeedEventTypes: one BatchGetItem once
// they all did). It runs on every cold start rather than from a CDK
// custom resource, because the item format is the store's, which the
// infra module cannot import, and a marker per type keeps edits,
// archives and expunges made through the API. A failure is logged, not
// fatal: the API serves without the sample catalog, and the next cold
// start tries again.
func seedCatalog(ctx context.Context, s *lambdafn.Services) {
	ctx, cancel := context.WithTimeout(ctx, seedTimeout)
	defer cancel()
	ets, err := events.EventTypes(s.Clock.Now())
	if err == nil {
		var created []string
		created, err = s.Store.SeedEventTypes(ctx, ets)
		if len(created) > 0 {
			s.Logger.Info("seeded event types", "event_types", created)
		}
	}
	if err != nil {
		s.Logger.Error("seed event types", "err", err)
	}
}
