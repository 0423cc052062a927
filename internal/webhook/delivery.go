package webhook

import (
	"context"
	"time"
)

// Resender starts manual runs: what the API and the dashboard ask of the
// delivery engine (internal/delivery.Service) when someone re-sends.
type Resender interface {
	// Resend starts a new manual run of msg to ep, skipping the endpoint's
	// filters, and dispatches it. BadRequest if ep is disabled.
	Resend(ctx context.Context, msg *Message, ep *Endpoint) error
	// Recover stores a running background task (endpoint.recover) and
	// starts it, in the background: a manual run for every message whose
	// attempts to ep failed in [since, until) and whose delivery there
	// ended without success. BadRequest if ep is disabled.
	Recover(ctx context.Context, ep *Endpoint, since, until time.Time) (Task, error)
}

// NewDelivery returns the delivery of a new message to an endpoint as its
// fan-out makes it: run 0, Pending, TriggerScheduled, no attempts, due at
// the message's timestamp, not dispatched, with the message's event type
// and channels.
func NewDelivery(msg *Message, endpointID string) Delivery {
	return Delivery{
		AppID:         msg.AppID,
		MsgID:         msg.ID,
		EndpointID:    endpointID,
		EventType:     msg.EventType,
		Channels:      msg.Channels,
		Status:        StatusPending,
		Trigger:       TriggerScheduled,
		NextAttemptAt: msg.Timestamp,
		CreatedAt:     msg.Timestamp,
		UpdatedAt:     msg.Timestamp,
	}
}

// NewRun returns run number run of the delivery of msg to an endpoint as
// Store.StartRun starts it: Pending, TriggerManual, no attempts, due at
// now, not dispatched. A store that keeps the delivery already keeps its
// EventType, Channels and CreatedAt, which NewRun copies from the message
// as the fan-out did.
func NewRun(msg *Message, endpointID string, run int, now time.Time) Delivery {
	d := NewDelivery(msg, endpointID)
	d.Run, d.Trigger, d.NextAttemptAt, d.UpdatedAt = run, TriggerManual, now, now
	return d
}

// Normalize makes d a delivery of the new message msg as
// Store.CreateMessage stores it: the ids, event type, channels and
// CreatedAt of the message, run 0, Pending, TriggerScheduled, no
// attempts. It keeps d's EndpointID, Dispatched and Claimed, and its
// NextAttemptAt and UpdatedAt unless they are zero (the message's
// timestamp then): the caller sets them for a delivery a dispatcher holds
// (see delivery.Holder).
func (d *Delivery) Normalize(msg *Message) {
	d.AppID, d.MsgID, d.EventType, d.Channels, d.CreatedAt = msg.AppID, msg.ID, msg.EventType, msg.Channels, msg.Timestamp
	d.Status, d.Run, d.Trigger, d.Attempts = StatusPending, 0, TriggerScheduled, 0
	if d.NextAttemptAt.IsZero() {
		d.NextAttemptAt = msg.Timestamp
	}
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = msg.Timestamp
	}
}
