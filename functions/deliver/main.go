// Command deliver is the Lambda function behind the delivery state
// machine's Task state: it makes one attempt of a delivery run and returns
// the outcome the Choice state switches on. See internal/lambdafn.
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
		fmt.Fprintln(os.Stderr, "deliver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	cfg, err := lambdafn.LoadConfig(getenv, lambdafn.Needs{})
	if err != nil {
		return err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("aws config: %w", err)
	}
	s := lambdafn.NewServices(cfg, awsCfg, os.Stdout)
	lambda.StartWithOptions(lambdafn.Deliver(s.Delivery), lambda.WithContext(ctx))
	return nil
}
