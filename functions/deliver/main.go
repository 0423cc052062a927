// Command deliver is the Lambda function behind the delivery state
// machine's Task state: it makes one attempt of a delivery run and returns
// the outcome the Choice state switches on. See internal/lambdafn.
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
		fmt.Fprintln(os.Stderr, "deliver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	s, err := lambdafn.Load(getenv, lambdafn.FunctionDeliver, lambdafn.WireDeliver)
	if err != nil {
		return err
	}
	lambda.StartWithOptions(lambdafn.DeliverEvents(s.Delivery, s.Later, s.Throttled, s.Metrics), lambda.WithContext(ctx))
	return nil
}
