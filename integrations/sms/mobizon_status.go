package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// MobizonMaxIDs is the most message ids one getSMSStatus request may ask
// for (Mobizon answers code 12 beyond it).
const MobizonMaxIDs = 100

// MobizonStatus is what Mobizon says of one message.
type MobizonStatus struct {
	ID string // the message id (Send's ProviderID)
	// Status is Mobizon's: NEW, ENQUEUD, ACCEPTD, PDLIVRD (not final);
	// DELIVRD, UNDELIV, REJECTD, EXPIRED, DELETED (final).
	Status string
}

// Final reports whether Mobizon will not change the status any more.
func (s MobizonStatus) Final() bool {
	switch s.Status {
	case "DELIVRD", "UNDELIV", "REJECTD", "EXPIRED", "DELETED":
		return true
	}
	return false
}

// Statuses asks Mobizon for the delivery status of the messages ids (at
// most MobizonMaxIDs), the way its client libraries do: POST
// {base}/service/message/getsmsstatus with api=v1, output=json and apiKey
// in the query and ids[0], ids[1], ... form-encoded in the body. The
// answer is {"code":0,"data":[{"id":"123","status":"DELIVRD",...}]};
// messages Mobizon does not know (or that are another account's) are
// left out of it, and so of the result. Errors are *Error, as Send's.
func (m *Mobizon) Statuses(ctx context.Context, ids []string) ([]MobizonStatus, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) > MobizonMaxIDs {
		return nil, &Error{Provider: m.provider, Detail: fmt.Sprintf("%d ids asked for, at most %d at once", len(ids), MobizonMaxIDs)}
	}
	form := make(url.Values, len(ids))
	for i, id := range ids {
		form.Set("ids["+strconv.Itoa(i)+"]", id)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.statusURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &Error{Provider: m.provider, Detail: "building the request failed"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sisnotify")

	status, body, herr := m.do(ctx, req)
	if herr != nil {
		return nil, herr
	}
	if status < 200 || status >= 300 {
		return nil, &Error{Provider: m.provider, Status: status, Temporary: true, Detail: http.StatusText(status)}
	}
	var ans struct {
		Code    *int            `json:"code"`
		Data    json.RawMessage `json:"data"`
		Message string          `json:"message"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.Code == nil {
		return nil, &Error{Provider: m.provider, Status: status, Temporary: true, Detail: "the answer is not Mobizon's JSON"}
	}
	if *ans.Code != 0 {
		return nil, &Error{Provider: m.provider, Code: strconv.Itoa(*ans.Code), Detail: m.redact(ans.Message),
			Temporary: !mobizonPermanent[*ans.Code]}
	}
	var items []struct {
		ID     json.RawMessage `json:"id"`
		Status string          `json:"status"`
	}
	if err := json.Unmarshal(ans.Data, &items); err != nil {
		return nil, &Error{Provider: m.provider, Status: status, Temporary: true, Detail: "data is not a list of statuses"}
	}
	out := make([]MobizonStatus, 0, len(items))
	for _, it := range items {
		id := scalar(it.ID)
		if id == "" || it.Status == "" {
			continue
		}
		out = append(out, MobizonStatus{ID: id, Status: strings.ToUpper(strings.TrimSpace(it.Status))})
	}
	return out, nil
}

// ErrNotMobizonID marks a provider id Mobizon cannot be asked about (a
// background task's "task:N", another provider's id).
var ErrNotMobizonID = errors.New("not a Mobizon message id")

// MobizonMessageID checks that id is one of Mobizon's message ids (digits).
func MobizonMessageID(id string) error {
	if id == "" || len(id) > 20 {
		return ErrNotMobizonID
	}
	for _, r := range id {
		if r < '0' || r > '9' {
			return ErrNotMobizonID
		}
	}
	return nil
}
