// Command api is the Lambda function behind API Gateway, a REST API or an
// HTTP API (either payload version): every path is proxied to the same
// http.Handler local mode serves. The admin
// token's hash is read from Secrets Manager once per cold start. See
// internal/lambdafn.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

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
