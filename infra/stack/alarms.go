package stack

import (
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	cw "github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/jsii-runtime-go"
)

// alarmPeriod is the window every alarm sums over.
const alarmPeriod = 5 * time.Minute

// addAlarms raises an alarm on the signals that need an operator, each
// firing on the first occurrence in a five-minute window:
//
//   - DeliverErrors: the deliver function failed (not a failed POST,
//     which is an outcome): an attempt may be unrecorded and its
//     execution has failed.
//   - ExecutionsFailed: a delivery execution failed. This includes runs
//     that exhausted the schedule (the MarkFailed → Exhausted path), so
//     it also fires when a customer's endpoint stays down for the whole
//     schedule; the deliver errors alarm tells the two apart.
//   - Throttles: Lambda throttled one of the functions. The state
//     machine retries throttled attempts, so deliveries slow down rather
//     than fail; the account's concurrency needs raising.
//   - Api5xx: the API answered 5xx, which hookstep promises never to do
//     for bad input.
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

	alarms := []struct {
		id, description string
		metric          cw.IMetric
	}{
		{"DeliverErrors", "The deliver function failed: an attempt may be unrecorded and its execution failed. See the deliver function's log group.", r.deliver.MetricErrors(sum)},
		{"ExecutionsFailed", "A delivery execution failed: the retry schedule was exhausted, or a task failed. See the state machine's log group.", r.stateMachine.MetricFailed(sum)},
		{"Throttles", "Lambda throttled a hookstep function: deliveries are delayed. Raise the account's Lambda concurrency.", throttles},
		{"Api5xx", "The API answered 5xx. See the api function's log group.", r.restAPI.MetricServerError(sum)},
	}

	var topic awssns.ITopic
	if h.props.AlarmTopicARN != "" {
		topic = awssns.Topic_FromTopicArn(h.stack, jsii.String("AlarmTopic"), jsii.String(h.props.AlarmTopicARN))
	}
	for _, a := range alarms {
		alarm := cw.NewAlarm(h.stack, jsii.String(a.id+"Alarm"), &cw.AlarmProps{
			AlarmDescription:   jsii.String(a.description),
			Metric:             a.metric,
			Threshold:          jsii.Number(1),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: cw.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   cw.TreatMissingData_NOT_BREACHING,
		})
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
	out(OutputAPIURL, r.restAPI.Url(), "Base URL of the hookstep API (the stage's invoke URL)")
	out(OutputAdminTokenSecret, r.adminToken.SecretArn(), "Secrets Manager secret holding the admin API token")
	out(OutputStateMachineARN, r.stateMachine.StateMachineArn(), "Delivery state machine")
	out(OutputTableName, r.table.TableName(), "DynamoDB table")
	if d := r.restAPI.DomainName(); d != nil {
		out(OutputCustomDomainTarget, d.DomainNameAliasDomainName(), "Point the custom domain's DNS record (CNAME or alias) here")
	}
}
