// Command infra is hookstep's CDK app: one environment-agnostic stack
// (no account or region lookups, so `make synth` works offline), built
// from the functions in ../build. Run it through the CDK CLI: make synth,
// make diff, make deploy, make destroy.
//
// Context values override the stack's defaults, e.g.
//
//	npx cdk deploy -c retrySchedule=0s,5s,10s -c removalPolicy=destroy
//
// Keys: dispatch (stepfunctions|queue), api (rest|http), retentionDays
// (the default payload retention), queueConcurrency and queueBatchSize
// (queue mode's event source mapping), retrySchedule (Go durations,
// comma-separated), httpTimeout,
// disableAfter, sweepRate (Go durations), removalPolicy (retain|destroy),
// domainName and certificateArn (together), alarmTopicArn,
// apiGatewayLogRoleExists (true when the account's API Gateway
// CloudWatch role is managed elsewhere), allowPrivateTargets and
// allowHTTP (for LocalStack, whose test receivers are on this machine),
// apiConcurrency, deliverConcurrency and sweeperConcurrency (reserved
// concurrency; 0 reserves none), dispatchRate (StartExecution calls per
// second, all sweeper instances together), warmReadUnitsPerSecond and
// warmWriteUnitsPerSecond (the table's warm throughput), and architecture
// (arm64|x86_64, as the functions were built: make sets it from ARCH).
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/hookstep/hookstep/infra/stack"
	"github.com/hookstep/hookstep/internal/webhook"
)

// stackID is the stack's name in CloudFormation.
const stackID = "Hookstep"

func main() {
	err := run()
	jsii.Close() // stops the jsii runtime; os.Exit would skip a deferred call
	if err != nil {
		fmt.Fprintln(os.Stderr, "infra:", err)
		os.Exit(1)
	}
}

func run() error {
	app := awscdk.NewApp(nil)
	props, err := propsFromContext(func(key string) string {
		if v := app.Node().TryGetContext(jsii.String(key)); v != nil {
			return fmt.Sprint(v)
		}
		return ""
	})
	if err != nil {
		return err
	}
	props.StackProps = awscdk.StackProps{
		Description: jsii.String("hookstep: self-hosted Svix-compatible webhook delivery"),
	}
	if _, err := stack.New(app, stackID, props); err != nil {
		return err
	}
	app.Synth(nil)
	return nil
}

// propsFromContext reads the stack props from the app's context, leaving
// unset keys at their defaults and reporting every bad value at once.
func propsFromContext(get func(key string) string) (*stack.Props, error) {
	p := &stack.Props{
		DomainName:     get("domainName"),
		CertificateARN: get("certificateArn"),
		AlarmTopicARN:  get("alarmTopicArn"),
		PortalName:     get("portalName"),
	}
	if v := get("portalFrameAncestors"); v != "" {
		p.PortalFrameAncestors = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
	}
	var errs []error
	switch v := stack.Dispatch(get("dispatch")); v {
	case "", stack.DispatchStepFunctions, stack.DispatchQueue:
		p.Dispatch = v
	default:
		errs = append(errs, fmt.Errorf("context dispatch %q: want %s or %s", v, stack.DispatchStepFunctions, stack.DispatchQueue))
	}
	switch v := stack.APIKind(get("api")); v {
	case "", stack.APIRest, stack.APIHTTP:
		p.API = v
	default:
		errs = append(errs, fmt.Errorf("context api %q: want %s or %s", v, stack.APIRest, stack.APIHTTP))
	}
	if v := get("retrySchedule"); v != "" {
		s, err := webhook.ParseSchedule(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("context retrySchedule: %w", err))
		}
		p.Schedule = s
	}
	for key, dst := range map[string]*time.Duration{
		"httpTimeout":  &p.HTTPTimeout,
		"disableAfter": &p.DisableAfter,
		"sweepRate":    &p.SweepRate,
	} {
		if v := get(key); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("context %s: %w", key, err))
			}
			*dst = d
		}
	}
	switch v := get("removalPolicy"); v {
	case "":
	case "retain":
		p.RemovalPolicy = awscdk.RemovalPolicy_RETAIN
	case "destroy":
		p.RemovalPolicy = awscdk.RemovalPolicy_DESTROY
	default:
		errs = append(errs, fmt.Errorf("context removalPolicy %q: want retain or destroy", v))
	}
	for key, dst := range map[string]**int{
		"apiConcurrency":     &p.APIConcurrency,
		"deliverConcurrency": &p.DeliverConcurrency,
		"sweeperConcurrency": &p.SweeperConcurrency,
	} {
		if v := get(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("context %s: %w", key, err))
			}
			*dst = new(n)
		}
	}
	for key, dst := range map[string]*int{
		"warmReadUnitsPerSecond":  &p.WarmThroughput.ReadUnitsPerSecond,
		"warmWriteUnitsPerSecond": &p.WarmThroughput.WriteUnitsPerSecond,
		"queueConcurrency":        &p.QueueConcurrency,
		"queueBatchSize":          &p.QueueBatchSize,
		"retentionDays":           &p.RetentionDays,
	} {
		if v := get(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("context %s: %w", key, err))
			}
			*dst = n
		}
	}
	if v := get("dispatchRate"); v != "" {
		r, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("context dispatchRate: %w", err))
		}
		p.DispatchRate = r
	}
	switch v := stack.Architecture(get("architecture")); v {
	case "", stack.ARM64, stack.X86_64:
		p.Architecture = v
	default:
		errs = append(errs, fmt.Errorf("context architecture %q: want %s or %s", v, stack.ARM64, stack.X86_64))
	}
	for key, dst := range map[string]*bool{
		"apiGatewayLogRoleExists": &p.APIGatewayLogRoleExists,
		"allowPrivateTargets":     &p.AllowPrivateTargets,
		"allowHTTP":               &p.AllowHTTP,
	} {
		if v := get(key); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("context %s: %w", key, err))
			}
			*dst = b
		}
	}
	return p, errors.Join(errs...)
}
