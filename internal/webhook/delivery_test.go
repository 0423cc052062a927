package webhook

import (
	"reflect"
	"testing"
	"time"
)

func TestNewDeliveryAndRun(t *testing.T) {
	sent := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := sent.Add(time.Hour)
	msg := &Message{ID: "msg_1", AppID: "app_1", EventType: "user.signup", Channels: []string{"eu"}, Timestamp: sent}

	first := Delivery{
		AppID: "app_1", MsgID: "msg_1", EndpointID: "ep_1", EventType: "user.signup", Channels: []string{"eu"},
		Status: StatusPending, Run: 0, Trigger: TriggerScheduled, NextAttemptAt: sent, CreatedAt: sent, UpdatedAt: sent,
	}
	if got := NewDelivery(msg, "ep_1"); !reflect.DeepEqual(got, first) {
		t.Errorf("NewDelivery: got %+v, want %+v", got, first)
	}

	run := first
	run.Run, run.Trigger, run.NextAttemptAt, run.UpdatedAt = 3, TriggerManual, now, now
	if got := NewRun(msg, "ep_1", 3, now); !reflect.DeepEqual(got, run) {
		t.Errorf("NewRun: got %+v, want %+v", got, run)
	}
}

func TestDeliveryNormalize(t *testing.T) {
	sent := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	held := sent.Add(30 * time.Second)
	msg := &Message{ID: "msg_1", AppID: "app_1", EventType: "user.signup", Channels: []string{"eu"}, Timestamp: sent}
	for _, tc := range []struct {
		name string
		in   Delivery
		want Delivery
	}{
		{"BareIsTheFanOut", Delivery{EndpointID: "ep_1"}, NewDelivery(msg, "ep_1")},
		{
			"WhatTheCallerSaysIsKept",
			Delivery{EndpointID: "ep_1", NextAttemptAt: held, UpdatedAt: sent, Dispatched: true, Claimed: true},
			func() Delivery {
				d := NewDelivery(msg, "ep_1")
				d.NextAttemptAt, d.Dispatched, d.Claimed = held, true, true
				return d
			}(),
		},
		{
			"RunStatusAndAttemptsAreReset",
			Delivery{AppID: "other", MsgID: "other", EndpointID: "ep_1", EventType: "x", Status: StatusFail, Run: 4,
				Trigger: TriggerManual, Attempts: 7, CreatedAt: held},
			NewDelivery(msg, "ep_1"),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in
			got.Normalize(msg)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
