package webhook

import (
	"strings"
	"sync"
	"time"

	"github.com/segmentio/ksuid"
)

// Id prefixes, as in Svix.
const (
	PrefixApp      = "app_"
	PrefixEndpoint = "ep_"
	PrefixMessage  = "msg_"
	PrefixAttempt  = "atmpt_"
	PrefixTask     = "qtask_"
)

var idPrefixes = []string{PrefixApp, PrefixEndpoint, PrefixMessage, PrefixAttempt, PrefixTask}

var (
	idMu   sync.Mutex
	lastID ksuid.KSUID
)

// NewID returns prefix + a KSUID. KSUIDs sort by time with one-second
// resolution; within this process the ids are also strictly increasing, so
// lists ordered by id are in creation order even within one second.
func NewID(prefix string) string {
	id := ksuid.New()
	idMu.Lock()
	if ksuid.Compare(id, lastID) <= 0 {
		id = lastID.Next()
	}
	lastID = id
	idMu.Unlock()
	return prefix + id.String()
}

// HasIDPrefix reports whether s starts with one of hookstep's id prefixes;
// uids may not, so an id and a uid can never be confused.
func HasIDPrefix(s string) bool {
	for _, p := range idPrefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// IDTime returns when an id made by NewID was made, to the second.
func IDTime(id string) (time.Time, bool) {
	i := strings.IndexByte(id, '_')
	if i < 0 {
		return time.Time{}, false
	}
	k, err := ksuid.Parse(id[i+1:])
	if err != nil {
		return time.Time{}, false
	}
	return k.Time(), true
}
