package stack_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/hookstep/hookstep/infra/stack"
)

// reservations returns each function's ReservedConcurrentExecutions,
// nil where the template leaves it out.
func reservations(t *testing.T, s synthesized) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, name := range stack.Functions {
		_, fn := s.tmpl.function(t, name)
		out[name] = fn.Properties["ReservedConcurrentExecutions"]
	}
	return out
}

func sweeperEnv(t *testing.T, s synthesized, key string) any {
	t.Helper()
	_, fn := s.tmpl.function(t, "sweeper")
	return fn.Properties["Environment"].(map[string]any)["Variables"].(map[string]any)[key]
}

// TestDefaultReservationsFitADefaultAccount checks that the stack deploys
// in an account with Lambda's default quota of 1,000 concurrent
// executions, of which Lambda keeps 100 unreserved.
func TestDefaultReservationsFitADefaultAccount(t *testing.T) {
	const defaultQuota = 1000
	total := 0
	for name, r := range reservations(t, defaultStack()) {
		n, ok := r.(float64)
		if !ok || n < 1 {
			t.Errorf("%s: got reservation %v, want one by default", name, r)
		}
		total += int(n)
	}
	if limit := defaultQuota - stack.UnreservedMinimum; total > limit {
		t.Errorf("reservations add up to %d, more than the %d a default account can reserve", total, limit)
	}
}

func TestConcurrencyProps(t *testing.T) {
	tests := []struct {
		name  string
		props stack.Props
		want  map[string]any
		rate  string // HOOKSTEP_DISPATCH_RATE
	}{
		{
			name:  "chosen",
			props: stack.Props{APIConcurrency: new(20), DeliverConcurrency: new(50), SweeperConcurrency: new(2), DispatchRate: 45},
			want:  map[string]any{"api": 20.0, "deliver": 50.0, "sweeper": 2.0},
			rate:  "22", // 45 over 2, rounded down: the function reads a whole number
		},
		{
			name:  "uneven share",
			props: stack.Props{SweeperConcurrency: new(3)},
			want:  map[string]any{"api": 100.0, "deliver": 300.0, "sweeper": 3.0},
			rate:  "33", // rounded down: three instances never exceed 100 a second
		},
		{
			// 0 is no reservation, not Lambda's "never run": what an
			// account with a quota below 100 can deploy.
			name:  "nothing reserved",
			props: stack.Props{APIConcurrency: new(0), DeliverConcurrency: new(0), SweeperConcurrency: new(0), DispatchRate: 10},
			want:  map[string]any{"api": nil, "deliver": nil, "sweeper": nil},
			rate:  "10",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := synth(t, tt.props)
			if got := reservations(t, s); !jsonEqual(got, tt.want) {
				t.Errorf("reservations: got %v, want %v", got, tt.want)
			}
			if got := sweeperEnv(t, s, "HOOKSTEP_DISPATCH_RATE"); got != tt.rate {
				t.Errorf("HOOKSTEP_DISPATCH_RATE: got %v, want %s", got, tt.rate)
			}
		})
	}
}

func TestWarmThroughput(t *testing.T) {
	_, plain := defaultStack().tmpl.only(t, "AWS::DynamoDB::Table")
	if w, ok := plain.Properties["WarmThroughput"]; ok {
		t.Errorf("default table: got WarmThroughput %v, want none (on-demand only)", w)
	}

	tests := []struct {
		name string
		warm stack.WarmThroughput
		want map[string]any
	}{
		{"both", stack.WarmThroughput{ReadUnitsPerSecond: 30000, WriteUnitsPerSecond: 10000},
			map[string]any{"ReadUnitsPerSecond": 30000.0, "WriteUnitsPerSecond": 10000.0}},
		{"writes only", stack.WarmThroughput{WriteUnitsPerSecond: 8000},
			map[string]any{"WriteUnitsPerSecond": 8000.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := synth(t, stack.Props{WarmThroughput: tt.warm})
			id, table := s.tmpl.only(t, "AWS::DynamoDB::Table")
			if got := table.Properties["WarmThroughput"]; !jsonEqual(got, tt.want) {
				t.Errorf("WarmThroughput: got %v, want %v", got, tt.want)
			}
			// The same table otherwise: a warm throughput must not
			// replace it.
			plainID, _ := defaultStack().tmpl.only(t, "AWS::DynamoDB::Table")
			rest := map[string]any{}
			for k, v := range table.Properties {
				if k != "WarmThroughput" {
					rest[k] = v
				}
			}
			if id != plainID || !jsonEqual(rest, plain.Properties) || table.DeletionPolicy != plain.DeletionPolicy {
				t.Errorf("table %s differs from the default %s beyond WarmThroughput", id, plainID)
			}
		})
	}
}

func TestArchitecture(t *testing.T) {
	for _, tt := range []struct {
		arch stack.Architecture
		want string
	}{
		{"", "arm64"}, // the default, as make build
		{stack.ARM64, "arm64"},
		{stack.X86_64, "x86_64"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			s := defaultStack()
			if tt.arch != "" {
				s = synth(t, stack.Props{Architecture: tt.arch})
			}
			for _, name := range stack.Functions {
				_, fn := s.tmpl.function(t, name)
				if got := fn.Properties["Architectures"]; !jsonEqual(got, []any{tt.want}) {
					t.Errorf("%s: got Architectures %v, want [%s]", name, got, tt.want)
				}
			}
		})
	}
}

// TestArchitectureMatchesTheBuild checks that a build for one
// architecture cannot be deployed as the other: Lambda would accept it
// and fail at the first invocation.
func TestArchitectureMatchesTheBuild(t *testing.T) {
	build := t.TempDir()
	for _, name := range stack.Functions {
		writeELF(t, filepath.Join(build, name, "bootstrap"), elf.EM_X86_64)
	}
	if _, err := stack.New(awscdk.NewApp(nil), "Hookstep", &stack.Props{AssetDir: build, Architecture: stack.ARM64}); err == nil || !strings.Contains(err.Error(), "ARCH") {
		t.Errorf("x86-64 build as arm64: got %v, want an error naming ARCH", err)
	}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(filepath.Join(t.TempDir(), "cdk.out"))})
	if _, err := stack.New(app, "Hookstep", &stack.Props{AssetDir: build, Architecture: stack.X86_64}); err != nil {
		t.Errorf("x86-64 build as x86_64: %v", err)
	}
}

// writeELF writes the header of a 64-bit little-endian ELF executable
// for machine: what the architecture check reads.
func writeELF(t *testing.T, path string, machine elf.Machine) {
	t.Helper()
	h := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT),
		Ehsize: uint16(binary.Size(elf.Header64{})),
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, h); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestQueueLeavesDeliverConcurrencyForRetries checks that by default the
// queue's event source mapping cannot take all of deliver's reserved
// instances: the executions' retries invoke the same function, and a
// burst of first attempts would throttle them.
func TestQueueLeavesDeliverConcurrencyForRetries(t *testing.T) {
	s := queueStack()
	_, esm := s.tmpl.only(t, "AWS::Lambda::EventSourceMapping")
	queue, _ := esm.Properties["ScalingConfig"].(map[string]any)["MaximumConcurrency"].(float64)
	reserved := reservations(t, s)["deliver"].(float64)
	if queue < 2 || queue > reserved/2 {
		t.Errorf("queue concurrency %v: want at least 2 (SQS's minimum) and at most half of deliver's %v", queue, reserved)
	}
}
