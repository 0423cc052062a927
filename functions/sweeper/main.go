// Command sweeper is the Lambda function an EventBridge schedule runs: it
// disables endpoints failing for a week and makes sure every unfinished
// delivery has an execution, re-driving those that have none. The api
// function also hands it runs to start (an asynchronous invoke). See
// internal/lambdafn and internal/sweeper.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/hookstep/hookstep/internal/lambdafn"
)

func main() {
	if err := run(context.Background(), os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "sweeper:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	s, err := lambdafn.Load(getenv, lambdafn.FunctionSweeper, lambdafn.WireSweeper)
	if err != nil {
		return err
	}
	lambda.StartWithOptions(lambdafn.Sweep(s.Sweeper, s.Delivery, s.Metrics), lambda.WithContext(ctx))
	return nil
}
