package stack

import (
	"fmt"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

const (
	// queueRetention keeps a message as long as SQS can, on both queues:
	// a delivery must outlive any outage of the deliver function. The
	// dead-letter queue counts from a message's first enqueue (a
	// Standard queue keeps that timestamp), which does not matter while
	// the sweeper drains it every sweep.
	queueRetention = 14 * 24 * time.Hour

	// maxReceiveCount is how many times a message is received before it
	// goes to the dead-letter queue: a delivery whose first attempt
	// failed without a result (the function errored or timed out) that
	// often wants a look, and the sweeper gives it back to dispatch.
	maxReceiveCount = 5

	// visibilityTimeouts is the queue's visibility timeout in deliver
	// timeouts. AWS's guidance for an SQS event source: at least six
	// times the function's timeout, so that a batch the event source
	// mapping holds while Lambda throttles the function, and then runs
	// to its timeout, is not received a second time meanwhile. More
	// would only delay a batch whose invocation failed; the function
	// itself shortens the visibility of a message it cannot handle yet
	// (its delivery is not written).
	visibilityTimeouts = 6

	// stateMachineSuffix names the state machine in queue mode after
	// the stack (see addQueue).
	stateMachineSuffix = "-delivery"

	// maxStateMachineName is Step Functions' limit on a name.
	maxStateMachineName = 80
)

// queueVisibilityTimeout is the delivery queue's visibility timeout.
func (p Props) queueVisibilityTimeout() time.Duration {
	return visibilityTimeouts * deliverTimeout(p.HTTPTimeout, p.Dispatch)
}

// addQueue, in queue mode, adds the delivery queue with its dead-letter
// queue and the event source mapping that feeds the deliver function
// from it. The api sends new deliveries to the queue; the deliver
// function makes their first attempts, reports the messages it could
// not handle (ReportBatchItemFailures) and starts an execution for a
// delivery that needs a retry.
//
// That last step needs the state machine's ARN in deliver's environment
// and policy, while the state machine's definition refers to deliver:
// CloudFormation cannot create either first. So in queue mode the state
// machine is named after the stack (its definition is unchanged), and
// deliver is told the ARN that name gives, built from the partition,
// region and account rather than referred to. In stepfunctions mode the
// state machine keeps its generated name: switching a deployed stack's
// mode replaces the state machine.
func (h *hookstep) addQueue() error {
	if h.props.Dispatch != DispatchQueue {
		return nil
	}
	r := &h.res
	stackName := h.stack.StackName()
	if *awscdk.Token_IsUnresolved(stackName) {
		return fmt.Errorf("stack: queue dispatch names the state machine after the stack, whose name must be known at synthesis")
	}
	name := *stackName + stateMachineSuffix
	if len(name) > maxStateMachineName {
		return fmt.Errorf("stack: queue dispatch names the state machine %q, longer than Step Functions' %d characters: shorten the stack's name", name, maxStateMachineName)
	}
	sm := r.stateMachine.Node().DefaultChild().(awscdk.CfnResource)
	sm.AddPropertyOverride(jsii.String("StateMachineName"), name)
	r.stateMachineARN = h.stack.FormatArn(&awscdk.ArnComponents{
		Service:      jsii.String("states"),
		Resource:     jsii.String("stateMachine"),
		ResourceName: jsii.String(name),
		ArnFormat:    awscdk.ArnFormat_COLON_RESOURCE_NAME,
	})

	// Their contents are copies: every delivery is in the table, and the
	// sweeper sends one that was never dispatched again. So the queues
	// go with the stack, whatever the RemovalPolicy.
	r.deadLetterQueue = awssqs.NewQueue(h.stack, jsii.String("DeadLetterQueue"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: seconds(queueRetention),
	})
	r.queue = awssqs.NewQueue(h.stack, jsii.String("DeliveryQueue"), &awssqs.QueueProps{
		Encryption:        awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		RetentionPeriod:   seconds(queueRetention),
		VisibilityTimeout: seconds(h.props.queueVisibilityTimeout()),
		DeadLetterQueue: &awssqs.DeadLetterQueue{
			Queue:           r.deadLetterQueue,
			MaxReceiveCount: jsii.Number(maxReceiveCount),
		},
	})

	// Not an SqsEventSource: its grant to deliver's immutable role would
	// add nothing, and addPermissions grants exactly what the mapping
	// needs.
	source := awslambda.NewEventSourceMapping(h.stack, jsii.String("DeliveryQueueSource"), &awslambda.EventSourceMappingProps{
		Target:         r.deliver,
		EventSourceArn: r.queue.QueueArn(),
		BatchSize:      jsii.Number(h.props.QueueBatchSize),
		// No batching window: a first attempt goes out as soon as its
		// message is received.
		MaxBatchingWindow:       awscdk.Duration_Seconds(jsii.Number(0)),
		ReportBatchItemFailures: jsii.Bool(true),
		MaxConcurrency:          jsii.Number(h.props.QueueConcurrency),
	})
	// The first message's failed attempt starts an execution: the state
	// machine must exist by then. (The mapping already follows deliver's
	// role and policy, which Lambda checks when it creates it.)
	source.Node().AddDependency(r.stateMachine)
	return nil
}
