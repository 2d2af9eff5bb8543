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
	// Consistent makes GETs linearizable reads (ConsistentHeader): the
	// node forwards them to the leader, which answers after a barrier.
	Consistent bool
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
//
// A node that cannot forward a write to the leader answers 503 with a
// NotLeader naming the leader's admin URL; Do then asks the leader itself,
// once (not for a CardListBody, which it cannot send twice).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var payload []byte
	var stream io.Reader
	ctype := JSONType
	switch b := body.(type) {
	case nil:
	case CardListBody:
		stream, ctype = b.Reader, CardListType
	case rawBody:
		stream, ctype = b.r, b.ctype
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return err
		}
		payload = data
	}
	base := c.Base
	for attempt := 0; ; attempt++ {
		rd := stream
		if payload != nil {
			rd = bytes.NewReader(payload)
		}
		data, leader, err := c.roundTrip(ctx, base, method, path, ctype, rd, out)
		if err != nil && leader != "" && leader != base && attempt == 0 && stream == nil {
			base = leader
			continue
		}
		if err != nil || out == nil {
			return err
		}
		if raw, ok := out.(*json.RawMessage); ok {
			*raw = data
			return nil
		}
		if _, ok := out.(io.Writer); ok {
			return nil
		}
		return json.Unmarshal(data, out)
	}
}

type rawBody struct {
	r     io.Reader
	ctype string
}

// Upload sends r with content type ctype (a snapshot) and decodes the
// JSON answer into out.
func (c *Client) Upload(ctx context.Context, method, path, ctype string, r io.Reader, out any) error {
	return c.Do(ctx, method, path, rawBody{r, ctype}, out)
}

// Download streams the answer of a GET into w (a snapshot).
func (c *Client) Download(ctx context.Context, path string, w io.Writer) error {
	return c.Do(ctx, http.MethodGet, path, nil, w)
}

// roundTrip sends one request; on a NotLeader answer it also returns the
// leader's admin URL. An out that is an io.Writer receives the body.
func (c *Client) roundTrip(ctx context.Context, base, method, path, ctype string, rd io.Reader, out any) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return nil, "", err
	}
	if method != http.MethodGet && method != http.MethodHead {
		req.Header.Set("Content-Type", ctype)
	} else if c.Consistent {
		req.Header.Set(ConsistentHeader, "1")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("admin API at %s: %w (is samrackd running?)", base, err)
	}
	defer resp.Body.Close()
	if w, ok := out.(io.Writer); ok && resp.StatusCode < 300 {
		if _, err := io.Copy(w, resp.Body); err != nil {
			return nil, "", fmt.Errorf("admin API at %s: %w", base, err)
		}
		return nil, "", nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode >= 300 {
		var e NotLeader
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		leader := ""
		if e.NotLeader {
			leader = strings.TrimRight(e.LeaderAdmin, "/")
		}
		return nil, leader, &Error{Status: resp.StatusCode, Msg: e.Error}
	}
	return data, "", nil
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
