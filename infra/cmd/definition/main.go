// Command definition prints the delivery state machine's definition
// (Amazon States Language) that the stack generates for a retry
// schedule, with placeholder ARNs in place of CloudFormation tokens
// (see stack.DefinitionFromTemplate). It is for checking or running the
// definition offline, e.g. with asl-validator or aws-local-stepfunctions:
//
//	go run ./cmd/definition -schedule 0s,1s,2s -o /tmp/definition.json
//
// With -template it reads the definition from an already synthesized
// template instead (e.g. cdk.out/Hookstep.template.json after make synth).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/aws/jsii-runtime-go"

	"github.com/hookstep/hookstep/infra/stack"
	"github.com/hookstep/hookstep/internal/webhook"
)

func main() {
	err := run(os.Args[1:])
	jsii.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "definition:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("definition", flag.ContinueOnError)
	scheduleFlag := fs.String("schedule", webhook.DefaultSchedule.String(), "retry schedule: comma-separated Go durations")
	template := fs.String("template", "", "read the definition from this synthesized template instead of synthesizing (ignores -schedule)")
	out := fs.String("o", "", "write the definition to this file instead of standard output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	def, err := definition(*template, *scheduleFlag)
	if err != nil {
		return err
	}
	def = append(def, '\n')
	if *out == "" {
		_, err = os.Stdout.Write(def)
		return err
	}
	return os.WriteFile(*out, def, 0o644)
}

func definition(template, schedule string) ([]byte, error) {
	if template != "" {
		b, err := os.ReadFile(template)
		if err != nil {
			return nil, err
		}
		return stack.DefinitionFromTemplate(b)
	}
	s, err := webhook.ParseSchedule(schedule)
	if err != nil {
		return nil, err
	}
	return stack.Definition(s)
}
