package appliance

import (
	"encoding/base64"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"github.com/samrack/samrack/api/admin"
	"github.com/samrack/samrack/appliance/pki"
	"github.com/samrack/samrack/drivers/ga467"
)

// Slot actions anywhere: POST /v1/slots/{id}/{action} names the slot as
//
//	N          slot N of this appliance (as before clusters)
//	NODE/N     slot N of appliance NODE (its node ID; NODE:N too)
//	SAM-ID     the slot that holds that SAM, on whichever appliance
//
// from the replicated inventory. An action on another appliance's slot is
// forwarded to that appliance's admin API over mutual TLS with this node's
// certificate and the caller's in admin.ForwardedCertHeader, exactly as a
// write is forwarded to the leader: the owner checks the caller's identity
// and role itself and audits the action with the caller as the actor.

// slotTarget resolves a slot reference to its appliance and slot number.
func (a *Appliance) slotTarget(ref string) (node, slot string, err error) {
	if _, err := strconv.Atoi(ref); err == nil {
		return a.id, ref, nil
	}
	if id, err := ga467.ParseSAMID(ref); err == nil {
		for _, s := range a.store.Slots() {
			if s.SAM == id {
				return s.Node, s.Name, nil
			}
		}
		return "", "", &admin.Error{Status: http.StatusNotFound, Msg: "SAM " + ref + " is in no appliance's inventory"}
	}
	i := strings.LastIndexAny(ref, "/:")
	if i <= 0 {
		return "", "", &admin.Error{Status: http.StatusBadRequest, Msg: "slot " + strconv.Quote(ref) + ": want N, NODE/N or a SAM ID"}
	}
	node, slot = ref[:i], ref[i+1:]
	if _, err := strconv.Atoi(slot); err != nil {
		return "", "", &admin.Error{Status: http.StatusBadRequest, Msg: "slot " + strconv.Quote(ref) + ": want N, NODE/N or a SAM ID"}
	}
	if node != a.id && !a.isNode(node) {
		return "", "", &admin.Error{Status: http.StatusNotFound, Msg: "node " + node + " is not a member of this cluster"}
	}
	return node, slot, nil
}

// slotRouting sends a slot action to the appliance that owns the slot.
func (a *Appliance) slotRouting(local http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		node, slot, err := a.slotTarget(r.PathValue("id"))
		if err != nil {
			ae := err.(*admin.Error)
			writeErr(w, ae.Status, "%s", ae.Msg)
			return
		}
		path := "/v1/slots/" + slot + "/" + url.PathEscape(r.PathValue("action"))
		if node == a.id {
			r2 := r.Clone(r.Context())
			r2.URL.Path, r2.URL.RawPath = path, ""
			r2.SetPathValue("id", slot)
			local.ServeHTTP(w, r2)
			return
		}
		if r.Header.Get(admin.ForwardedNodeHeader) != "" {
			writeErr(w, http.StatusMisdirectedRequest, "forwarded slot action for %s/%s reached %s", node, slot, a.id)
			return
		}
		base := a.registry()[node].Admin
		target, err := url.Parse(base)
		if base == "" || err != nil {
			writeErr(w, http.StatusServiceUnavailable, "node %s has no admin address in the registry", node)
			return
		}
		p := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.URL.Path, pr.Out.URL.RawPath = path, ""
				pr.Out.Host = pki.ServerName
				for _, h := range []string{"Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", admin.ForwardedCertHeader, admin.ForwardedNodeHeader} {
					pr.Out.Header.Del(h)
				}
				pr.Out.Header.Set(admin.ForwardedNodeHeader, a.id)
				if pr.In.TLS != nil && len(pr.In.TLS.PeerCertificates) > 0 {
					pr.Out.Header.Set(admin.ForwardedCertHeader, base64.StdEncoding.EncodeToString(pr.In.TLS.PeerCertificates[0].Raw))
				}
			},
			Transport:     a.nodeHTTP.Transport,
			FlushInterval: -1,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				writeErr(w, http.StatusBadGateway, "node %s could not be reached: %v", node, err)
			},
		}
		p.ServeHTTP(w, r)
	}
}
