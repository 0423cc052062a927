// Command sweeper is the Lambda function an EventBridge schedule runs: it
// disables endpoints failing for a week and re-drives deliveries whose
// execution never started. See internal/lambdafn and internal/sweeper.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/hookstep/hookstep/internal/lambdafn"
)

func main() {
	if err := run(context.Background(), os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "sweeper:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	cfg, err := lambdafn.LoadConfig(getenv, lambdafn.Needs{StateMachine: true})
	if err != nil {
		return err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("aws config: %w", err)
	}
	s := lambdafn.NewServices(cfg, awsCfg, os.Stdout)
	lambda.StartWithOptions(lambdafn.Sweep(s.Sweeper), lambda.WithContext(ctx))
	return nil
}
