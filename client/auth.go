package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// FetchToken authenticates with the server's auth endpoint (nes's /nes/auth by default), as
// the token and cookie auth types ask: it GETs endpoint (an http:// or https:// URL; ws://
// and wss:// are mapped) with header (the application's own credentials, such as an
// Authorization header) and returns the token the server sealed, for Auth.Token. For cookie
// authentication the token is empty and the server's cookie lands in hc's Jar: give the same
// Jar to Options.Jar. A nil hc means http.DefaultClient.
//
// A refusal is an *Error of kind KindServer with the endpoint's status and payload.
func FetchToken(ctx context.Context, endpoint string, header http.Header, hc *http.Client) (string, error) {
	u, err := httpURL(endpoint)
	if err != nil {
		return "", newError(KindUser, "invalid auth endpoint URL", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", newError(KindUser, "invalid auth endpoint URL", err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", newError(KindTransport, "cannot reach the auth endpoint", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", newError(KindTransport, "cannot read the auth endpoint's answer", err)
	}
	var answer struct {
		Status  string `json:"status"`
		Token   string `json:"token"`
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	_ = json.Unmarshal(body, &answer)
	if resp.StatusCode >= 400 {
		msg := answer.Message
		if msg == "" {
			msg = strings.TrimSpace(answer.Error)
		}
		if msg == "" {
			msg = resp.Status
		}
		e := &Error{Kind: KindServer, StatusCode: resp.StatusCode, Message: msg, Headers: resp.Header}
		if json.Valid(body) {
			e.Payload = body
		}
		return "", e
	}
	if answer.Status != "authenticated" {
		return "", &Error{Kind: KindServer, StatusCode: resp.StatusCode, Payload: body,
			Message: fmt.Sprintf("the auth endpoint answered status %q: the request carried no credentials it accepts", answer.Status)}
	}
	return answer.Token, nil
}
