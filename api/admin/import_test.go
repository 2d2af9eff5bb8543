package admin_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/samrack/samrack/api/admin"
)

// TestImportPart: numbering from first_line, bad lines listed up to the
// cap and all counted, repeats counted as present, the audit event.
func TestImportPart(t *testing.T) {
	e := newEnv(t)
	c := &admin.Client{Base: e.srv.URL, HTTP: e.client("operator")}
	var body strings.Builder
	body.WriteString("\xef\xbb\xbf0000000000000001\n") // not line 1 of the list: the BOM makes it bad
	for i := range 250 {
		fmt.Fprintf(&body, "%016x\nbad %d\n", i+2, i)
	}
	body.WriteString(card1 + "\n") // on the list already
	body.WriteString("0000000000000002, lost\n")
	res, err := c.ImportPart(context.Background(), strings.NewReader(body.String()), 1001, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstLine != 1001 || res.Lines != 503 || res.Cards != 252 || res.New != 250 || res.Present != 2 || res.Bad != 251 ||
		len(res.BadLines) != admin.MaxBadLinesReported || res.Chunks != 2 {
		t.Fatalf("%+v", res)
	}
	if res.BadLines[0].Line != 1001 || res.BadLines[1].Line != 1003 || res.BadLines[99].Line != 1199 || !strings.Contains(res.BadLines[1].Error, `card serial "bad 0"`) {
		t.Fatalf("bad lines %+v", res.BadLines[:3])
	}
	// A card on two lines: here the later line's reason (its chunk is applied after).
	if en, ok := e.st.CardBlacklisted([8]byte{7: 2}); !ok || en.Reason != "lost" {
		t.Fatalf("0000000000000002: %+v %v", en, ok)
	}
	ev := e.lastEvent()
	if ev.Kind != "blacklist.card.import" || ev.Actor != "operator" || ev.Count != 250 || !strings.Contains(ev.Detail, "lines 1001-1503: 250 new, 2 already present, 251 bad") {
		t.Fatalf("audit %+v", ev)
	}
	// A list of nothing but comments is refused as the first part only.
	if _, err := c.ImportPart(context.Background(), strings.NewReader("# nothing\n"), 1, ""); err == nil || !strings.Contains(err.Error(), "no cards") {
		t.Fatalf("first part: %v", err)
	}
	if res, err := c.ImportPart(context.Background(), strings.NewReader("# nothing\n"), 7, ""); err != nil || res.Lines != 1 {
		t.Fatalf("later part: %+v %v", res, err)
	}
}
