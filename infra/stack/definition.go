package stack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/hookstep/hookstep/internal/webhook"
)

// Placeholders that Definition puts where the template has CloudFormation
// tokens: a function's ARN becomes
// "arn:aws:lambda:us-east-1:123456789012:function:<logical id>".
const (
	PlaceholderPartition = "aws"
	PlaceholderRegion    = "us-east-1"
	PlaceholderAccount   = "123456789012"
)

// Definition returns the delivery state machine's definition (Amazon
// States Language JSON) that the stack generates for schedule. It
// synthesizes the whole stack, against a stub build of the functions, and
// reads the definition from the template, so it is exactly what a
// deployment gets, tokens aside (see DefinitionFromTemplate). It is for
// tests and tools that check or run the definition offline.
//
// Callers must call jsii.Close before exiting, as for any CDK app.
func Definition(schedule webhook.Schedule) ([]byte, error) {
	dir, err := os.MkdirTemp("", "hookstep-definition-")
	if err != nil {
		return nil, fmt.Errorf("stack: definition: %w", err)
	}
	defer os.RemoveAll(dir)
	build := filepath.Join(dir, "build")
	if err := StubBuild(build); err != nil {
		return nil, err
	}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(filepath.Join(dir, "cdk.out"))})
	st, err := New(app, "HookstepDefinition", &Props{Schedule: schedule, AssetDir: build})
	if err != nil {
		return nil, err
	}
	path := app.Synth(nil).GetStackArtifact(st.ArtifactId()).TemplateFullPath()
	template, err := os.ReadFile(*path)
	if err != nil {
		return nil, fmt.Errorf("stack: definition: %w", err)
	}
	return DefinitionFromTemplate(template)
}

// StubBuild writes a placeholder bootstrap for each function under dir,
// so that the stack can be synthesized without `make build`: the tests
// and Definition look at the template, never at the code.
func StubBuild(dir string) error {
	for _, name := range Functions {
		fnDir := filepath.Join(dir, name)
		if err := os.MkdirAll(fnDir, 0o755); err != nil {
			return fmt.Errorf("stack: stub build: %w", err)
		}
		stub := []byte("#!/bin/sh\necho 'stub " + name + ": run make build' >&2\nexit 1\n")
		if err := os.WriteFile(filepath.Join(fnDir, "bootstrap"), stub, 0o755); err != nil {
			return fmt.Errorf("stack: stub build: %w", err)
		}
	}
	return nil
}

// DefinitionFromTemplate extracts the state machine's definition from a
// synthesized template (JSON). CloudFormation assembles DefinitionString
// with Fn::Join from literal parts and the deliver function's ARN
// (Fn::GetAtt); the parts are joined and each token replaced by a
// placeholder ARN built from the Placeholder constants, so the result is
// plain, valid JSON. A token it does not know is an error, not a guess.
func DefinitionFromTemplate(template []byte) ([]byte, error) {
	var t struct {
		Resources map[string]struct {
			Type       string         `json:"Type"`
			Properties map[string]any `json:"Properties"`
		} `json:"Resources"`
	}
	if err := json.Unmarshal(template, &t); err != nil {
		return nil, fmt.Errorf("stack: template: %w", err)
	}
	var defs []any
	types := make(map[string]string, len(t.Resources))
	for id, r := range t.Resources {
		types[id] = r.Type
		if r.Type == "AWS::StepFunctions::StateMachine" {
			defs = append(defs, r.Properties["DefinitionString"])
		}
	}
	if len(defs) != 1 {
		return nil, fmt.Errorf("stack: template has %d state machines, want 1", len(defs))
	}
	r := resolver{types: types}
	def, err := r.resolve(defs[0])
	if err != nil {
		return nil, fmt.Errorf("stack: state machine definition: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, []byte(def), "", "  "); err != nil {
		return nil, fmt.Errorf("stack: state machine definition is not JSON: %w", err)
	}
	return out.Bytes(), nil
}

// resolver evaluates the CloudFormation intrinsics a definition uses.
type resolver struct {
	types map[string]string // logical id → resource type
}

func (r resolver) resolve(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case map[string]any:
		if len(v) != 1 {
			break
		}
		if args, ok := v["Fn::Join"]; ok {
			return r.join(args)
		}
		if args, ok := v["Fn::GetAtt"]; ok {
			return r.getAtt(args)
		}
		if name, ok := v["Ref"].(string); ok {
			return r.ref(name)
		}
	}
	return "", fmt.Errorf("cannot resolve %v", v)
}

func (r resolver) join(args any) (string, error) {
	a, ok := args.([]any)
	if !ok || len(a) != 2 {
		return "", fmt.Errorf("Fn::Join wants [separator, parts], got %v", args)
	}
	sep, ok1 := a[0].(string)
	parts, ok2 := a[1].([]any)
	if !ok1 || !ok2 {
		return "", fmt.Errorf("Fn::Join wants [separator, parts], got %v", args)
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		s, err := r.resolve(p)
		if err != nil {
			return "", err
		}
		out[i] = s
	}
	return strings.Join(out, sep), nil
}

func (r resolver) getAtt(args any) (string, error) {
	a, ok := args.([]any)
	if !ok || len(a) != 2 || a[1] != "Arn" {
		return "", fmt.Errorf("Fn::GetAtt %v: only a function's Arn is known", args)
	}
	id, _ := a[0].(string)
	if r.types[id] != "AWS::Lambda::Function" {
		return "", fmt.Errorf("Fn::GetAtt %v: %s is a %q, not a Lambda function", args, id, r.types[id])
	}
	return fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", PlaceholderPartition, PlaceholderRegion, PlaceholderAccount, id), nil
}

func (r resolver) ref(name string) (string, error) {
	switch name {
	case "AWS::Partition":
		return PlaceholderPartition, nil
	case "AWS::Region":
		return PlaceholderRegion, nil
	case "AWS::AccountId":
		return PlaceholderAccount, nil
	}
	return "", errors.New("Ref " + name + ": only pseudo parameters are known")
}
