package stack

import (
	"fmt"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	cw "github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/jsii-runtime-go"
)

// alarmPeriod is the window most alarms sum over.
const alarmPeriod = 5 * time.Minute

// The custom metrics hookstep's functions publish with CloudWatch's
// Embedded Metric Format, in MetricNamespace and without dimensions.
const (
	MetricNamespace = "Hookstep"

	// MetricDispatchBacklog is the number of deliveries still waiting to
	// be dispatched or re-driven when a sweeper run ends.
	MetricDispatchBacklog = "DispatchBacklog"

	// MetricHandOffs counts runs the deliver function handed back to the
	// sweeper (the state machine's reconcile hand-off).
	MetricHandOffs = "HandOffs"
)

// backlogMinutes is how many minutes in a row every sweeper run must end
// with a dispatch backlog before it alarms (at least two runs, when the
// sweep is slower than every 5 minutes). A backlog is normal for a
// while: a burst of new deliveries beyond DispatchRate takes minutes to
// start (20,000 at 100 a second, about 3.5), and a delivery whose
// hand-off was lost waits until it is HOOKSTEP_REDRIVE_AFTER old and then
// for the next sweep. Ten minutes is past both: dispatch has stopped
// keeping up (StartExecution throttled or failing, the sweeper throttled
// or failing, DispatchRate too low for the traffic).
const backlogMinutes = 10

// queueAgeThreshold is the age of the delivery queue's oldest message at
// which queue mode alarms, unless one visibility timeout is longer (see
// queueAge). A burst drains in seconds: the queue runs QueueConcurrency
// batches of QueueBatchSize at once, about 1,000 first attempts a second
// by default, and the API admits 100 messages a second. A message still
// waiting after 10 minutes, the DispatchBacklog alarm's patience, means
// that new deliveries have outpaced the deliver concurrency for minutes
// (or the function keeps failing: a message whose invocation failed
// comes back one visibility timeout later, and SQS leaves a message out
// of this metric once it has been received three times).
const queueAgeThreshold = backlogMinutes * time.Minute

// queueAge is the oldest-message age that alarms: queueAgeThreshold, or
// a minute more than one visibility timeout if that is longer, so that a
// single failed invocation, which DeliverErrors reports, is not a
// backlog.
func (p Props) queueAge() time.Duration {
	return max(queueAgeThreshold, p.queueVisibilityTimeout()+time.Minute)
}

// addAlarms raises an alarm on the signals that need an operator. Unless
// said otherwise, each fires on the first occurrence in a five-minute
// window:
//
//   - DeliverErrors: the deliver function failed (not a failed POST,
//     which is an outcome): an attempt may be unrecorded.
//   - ExecutionsFailed: a delivery execution failed. A schedule that runs
//     out ends in a Succeed state (Exhausted), so a customer's endpoint
//     that stays down does not count; a failed execution means a task
//     failed beyond its Catch (hookstep.Stranded, hookstep.UnknownOutcome).
//   - ExecutionThrottled: Step Functions throttled state transitions of
//     the delivery state machine (the account's StateTransition quota):
//     deliveries run late.
//   - Throttles: Lambda throttled one of the functions, which ran out of
//     its reserved concurrency (or the account of its quota). The state
//     machine retries throttled attempts and Lambda retries throttled
//     asynchronous invocations, so deliveries slow down rather than
//     fail; the api answers 500 meanwhile.
//   - TableThrottles: DynamoDB throttled requests to the table (or to an
//     index, which throttles the table's writes).
//   - DispatchBacklog: every sweep for backlogMinutes minutes in a row
//     (and at least two sweeps) ended with deliveries still to dispatch.
//   - HandOffs: a delivery execution ended in the reconcile hand-off
//     (a task failed; the run went back to the sweeper): each one is
//     worth a look.
//   - Api5xx: the API answered 5xx, which hookstep promises never to do
//     for bad input.
//   - EndedDeadLetters: the sweeper could not take back the run of an
//     execution that ended without succeeding (see addSweep).
//
// In queue mode, besides:
//
//   - DeadLetterQueue: a message is in the dead-letter queue: a first
//     attempt failed without a result maxReceiveCount times. The sweeper
//     gives it back to dispatch; the cause is worth a look.
//   - QueueAge: the delivery queue's oldest message is older than
//     queueAge (10 minutes by default): first attempts run late.
//
// Missing data is not breaching: a quiet service is a healthy one.
func (h *hookstep) addAlarms() {
	r := h.res
	sum := &cw.MetricOptions{Period: seconds(alarmPeriod), Statistic: jsii.String("Sum")}
	throttles := cw.NewMathExpression(&cw.MathExpressionProps{
		Expression: jsii.String("api + deliver + sweeper"),
		UsingMetrics: &map[string]cw.IMetric{
			"api":     r.api.MetricThrottles(sum),
			"deliver": r.deliver.MetricThrottles(sum),
			"sweeper": r.sweeper.MetricThrottles(sum),
		},
		Label:  jsii.String("Lambda throttles"),
		Period: seconds(alarmPeriod),
	})
	tableThrottles := r.table.MetricThrottledRequestsForOperations(&awsdynamodb.OperationsMetricOptions{
		// The operations hookstep sends (see addPermissions).
		Operations: &[]awsdynamodb.Operation{
			awsdynamodb.Operation_GET_ITEM, awsdynamodb.Operation_BATCH_GET_ITEM, awsdynamodb.Operation_QUERY,
			awsdynamodb.Operation_PUT_ITEM, awsdynamodb.Operation_UPDATE_ITEM, awsdynamodb.Operation_DELETE_ITEM,
			awsdynamodb.Operation_BATCH_WRITE_ITEM,
		},
		Period:    seconds(alarmPeriod),
		Statistic: jsii.String("Sum"),
	})
	// Each scheduled sweep publishes the backlog once, so a period is
	// one sweep: with longer periods, the sweeps between data points
	// would be missing data, which is not breaching, and the alarm could
	// never see enough periods in a row.
	sweepMinutes := int(h.props.SweepRate / time.Minute)
	backlogSweeps := max(2, (backlogMinutes+sweepMinutes-1)/sweepMinutes)
	backlog := cw.NewMetric(&cw.MetricProps{
		Namespace:  jsii.String(MetricNamespace),
		MetricName: jsii.String(MetricDispatchBacklog),
		// Minimum: one run in the period that ended with nothing left
		// is enough to call it clear.
		Statistic: jsii.String("Minimum"),
		Period:    seconds(h.props.SweepRate),
	})
	handOffs := cw.NewMetric(&cw.MetricProps{
		Namespace:  jsii.String(MetricNamespace),
		MetricName: jsii.String(MetricHandOffs),
		Statistic:  jsii.String("Sum"),
		Period:     seconds(alarmPeriod),
	})

	type alarm struct {
		id, description string
		metric          cw.IMetric
		periods         float64 // consecutive breaching periods, when more than 1
		threshold       float64 // the metric at or above which it alarms, when not 1
	}
	alarms := []alarm{
		{id: "DeliverErrors", metric: r.deliver.MetricErrors(sum),
			description: "The deliver function failed: an attempt may be unrecorded. See the deliver function's log group."},
		{id: "ExecutionsFailed", metric: r.stateMachine.MetricFailed(sum),
			description: "A delivery execution failed: a task failed beyond its Catch (hookstep.Stranded or hookstep.UnknownOutcome). " +
				"A schedule that runs out does not count: it ends in the Succeed state Exhausted. See the state machine's log group."},
		{id: "ExecutionThrottled", metric: r.stateMachine.MetricThrottled(sum),
			description: "Step Functions throttled the delivery state machine's state transitions: deliveries run late. " +
				"Lower DispatchRate or raise the account's StateTransition quota."},
		{id: "Throttles", metric: throttles,
			description: "Lambda throttled a hookstep function, which ran out of its reserved concurrency: deliveries are delayed, and a throttled api answers 500. " +
				"Raise apiConcurrency, deliverConcurrency or sweeperConcurrency (and the account's concurrency quota if needed)."},
		{id: "TableThrottles", metric: tableThrottles,
			description: "DynamoDB throttled requests to the hookstep table or its indexes. Look for a hot partition; set the table's warm throughput before a known peak."},
		{id: "DispatchBacklog", metric: backlog, periods: float64(backlogSweeps),
			description: fmt.Sprintf("%d sweeps in a row (%d minutes) ended with deliveries still waiting to be dispatched or re-driven (Hookstep/DispatchBacklog). ",
				backlogSweeps, backlogSweeps*sweepMinutes) +
				"Check the sweeper's log group, its throttles, and StartExecution throttling; raise DispatchRate if the account allows."},
		{id: "HandOffs", metric: handOffs,
			description: "A delivery execution ended in the reconcile hand-off (Hookstep/HandOffs): a task failed and the run went back to the sweeper, which re-drives it. " +
				"Each one is worth a look: see the deliver function's and the state machine's log groups."},
		{id: "Api5xx", metric: r.apiServerErrors,
			description: "The API answered 5xx. See the api function's log group."},
		{id: "EndedDeadLetters", metric: r.endedDeadLetters.MetricApproximateNumberOfMessagesVisible(
			&cw.MetricOptions{Period: seconds(alarmPeriod), Statistic: jsii.String("Maximum")}),
			description: "The sweeper could not take back the run of a delivery execution that failed, was aborted or timed out, for 24 hours of retries: " +
				"the event is in the EndedDeadLetters queue (its detail.input is the run). See the sweeper's log group; " +
				"once it works, the scheduled sweep re-drives runs that have a delivery item; resend the others' messages."},
	}
	if h.props.Dispatch == DispatchQueue {
		// Maximum: SQS samples its queues every minute, and a message
		// the sweeper drains within the period still shows in one.
		maximum := &cw.MetricOptions{Period: seconds(alarmPeriod), Statistic: jsii.String("Maximum")}
		age := h.props.queueAge()
		alarms = append(alarms,
			alarm{id: "DeadLetterQueue", metric: r.deadLetterQueue.MetricApproximateNumberOfMessagesVisible(maximum),
				description: fmt.Sprintf("A delivery's message reached the dead-letter queue: its first attempt failed without a result %d times. ", maxReceiveCount) +
					"The sweeper sends it back to dispatch; see the deliver function's log group for why it failed."},
			alarm{id: "QueueAge", metric: r.queue.MetricApproximateAgeOfOldestMessage(maximum), threshold: age.Seconds(),
				description: fmt.Sprintf("The delivery queue's oldest message is %s old: first attempts run late. ", age) +
					"New deliveries outpace queueConcurrency x queueBatchSize, or the deliver function keeps failing or is throttled: " +
					"see its log group and throttles; raise queueConcurrency (and deliverConcurrency) if the account allows."},
		)
	}

	var topic awssns.ITopic
	if h.props.AlarmTopicARN != "" {
		topic = awssns.Topic_FromTopicArn(h.stack, jsii.String("AlarmTopic"), jsii.String(h.props.AlarmTopicARN))
	}
	for _, a := range alarms {
		threshold := 1.0
		if a.threshold != 0 {
			threshold = a.threshold
		}
		props := &cw.AlarmProps{
			AlarmDescription:   jsii.String(a.description),
			Metric:             a.metric,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: cw.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   cw.TreatMissingData_NOT_BREACHING,
		}
		if a.periods > 1 {
			props.EvaluationPeriods = jsii.Number(a.periods)
			props.DatapointsToAlarm = jsii.Number(a.periods)
		}
		alarm := cw.NewAlarm(h.stack, jsii.String(a.id+"Alarm"), props)
		if topic != nil {
			action := awscloudwatchactions.NewSnsAction(topic)
			alarm.AddAlarmAction(action)
			alarm.AddOkAction(action)
		}
	}
}

// Names of the stack's outputs, for scripts that read them.
const (
	OutputAPIURL             = "ApiUrl"
	OutputAdminTokenSecret   = "AdminTokenSecretArn"
	OutputStateMachineARN    = "StateMachineArn"
	OutputTableName          = "TableName"
	OutputCustomDomainTarget = "CustomDomainTarget"
)

// addOutputs exports what a user or a deploy script needs next: where
// the API is, where its admin token is kept (never the token itself),
// and for a custom domain the name its DNS record must point at.
func (h *hookstep) addOutputs() {
	r := h.res
	out := func(id string, value *string, description string) {
		awscdk.NewCfnOutput(h.stack, jsii.String(id), &awscdk.CfnOutputProps{
			Value:       value,
			Description: jsii.String(description),
		})
	}
	out(OutputAPIURL, r.apiURL, "Base URL of the hookstep API (the stage's invoke URL)")
	out(OutputAdminTokenSecret, r.adminToken.SecretArn(), "Secrets Manager secret holding the admin API token")
	out(OutputStateMachineARN, r.stateMachine.StateMachineArn(), "Delivery state machine")
	out(OutputTableName, r.table.TableName(), "DynamoDB table")
	if r.apiDomainTarget != nil {
		out(OutputCustomDomainTarget, r.apiDomainTarget, "Point the custom domain's DNS record (CNAME or alias) here")
	}
}
