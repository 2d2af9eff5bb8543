package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client calls the admin API (samctl's transport): HTTPS with the client
// certificate of a Credentials file.
type Client struct {
	Base string // e.g. https://127.0.0.1:7480
	HTTP *http.Client
}

// NewClient returns a Client for the credentials; base, if not empty,
// replaces their URL ("host:port" or "https://host:port").
func NewClient(c *Credentials, base string) (*Client, error) {
	cfg, err := c.TLSConfig()
	if err != nil {
		return nil, err
	}
	if base == "" {
		base = c.URL
	}
	if !strings.Contains(base, "://") {
		base = "https://" + base
	}
	if strings.HasPrefix(base, "http://") {
		return nil, fmt.Errorf("admin API %s: plain HTTP is not served; use https://", base)
	}
	tr := &http.Transport{TLSClientConfig: cfg, TLSHandshakeTimeout: 10 * time.Second}
	return &Client{Base: strings.TrimRight(base, "/"), HTTP: &http.Client{Timeout: 90 * time.Second, Transport: tr}}, nil
}

// CardListBody is a card list body for Do (POST /v1/blacklist/cards/import).
type CardListBody struct{ io.Reader }

// Do sends a request with an optional JSON (or, for a CardListBody, card
// list) body and decodes the JSON answer into out (if non-nil). An error
// answer becomes an *Error carrying the server's message.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	ctype := JSONType
	switch b := body.(type) {
	case nil:
	case CardListBody:
		rd, ctype = b.Reader, CardListType
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return err
	}
	if method != http.MethodGet && method != http.MethodHead {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("admin API at %s: %w (is samrackd running?)", c.Base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return &Error{Status: resp.StatusCode, Msg: e.Error}
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = data
		return nil
	}
	return json.Unmarshal(data, out)
}

// ErrUnhealthy is returned by Health, wrapped with the reason, when the
// appliance answers degraded.
var ErrUnhealthy = errors.New("degraded")

// Health asks /healthz (no certificate needed, though one is presented).
// It returns the answer and nil when ok, the answer and an error wrapping
// ErrUnhealthy when degraded, and another error when the appliance cannot
// be reached or answers something else.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/healthz", nil)
	if err != nil {
		return h, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return h, fmt.Errorf("admin API at %s: %w", c.Base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return h, fmt.Errorf("admin API at %s: %w", c.Base, err)
	}
	if json.Unmarshal(data, &h) != nil || h.Status == "" {
		return h, fmt.Errorf("admin API at %s: HTTP %d: %s", c.Base, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	switch {
	case resp.StatusCode == http.StatusOK && h.Status == "ok":
		return h, nil
	case resp.StatusCode == http.StatusServiceUnavailable && h.Status == "degraded":
		return h, fmt.Errorf("%w: %s", ErrUnhealthy, h.Reason)
	}
	return h, fmt.Errorf("admin API at %s: HTTP %d: status %q", c.Base, resp.StatusCode, h.Status)
}
