package wire_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/samrack/samrack/api/suite"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/drivers/ga467"
)

// Example_read walks a warm two-round-trip read through the codec and the
// suites: the reader side and the SAM side in one function, a buffer in place
// of the TLS connection and the appliance in between.
func Example_read() {
	readerKey := []byte("0123456789abcdef")
	var conn bytes.Buffer

	// Reader, frame 1: Open (one key share per suite) + find + select + read.
	var shares []wire.KeyShare
	eph := map[suite.ID]*suite.Ephemeral{}
	for _, id := range suite.Supported() {
		e, err := suite.Generate(id, nil)
		if err != nil {
			log.Fatal(err)
		}
		eph[id] = e
		shares = append(shares, wire.KeyShare{Suite: id, Public: e.Public()})
	}
	pre, _ := wire.MarshalPreSession(&wire.PreSession{
		CardSerial: [8]byte{1, 2, 3, 4, 5, 6, 7, 8},
		Prefetch:   []wire.Exchange{{Cmd: []byte{0x05, 0x00, 0x00}, Resp: []byte{0x50, 1, 2, 3}}},
	})
	sealedPre, _ := suite.SealWithReaderKey(suite.CipherSM4, readerKey, "R-0001", pre, nil)
	must(wire.WriteFrame(&conn,
		&wire.Open{ReaderSerial: "R-0001", KeyShares: shares, Sealed: sealedPre},
		&wire.FindRequest{}, &wire.SelectRequest{}, &wire.ReadRequest{}))

	// SAM side: open the pre-session, pick the reader's first supported
	// suite, answer find and select from the prefetch, send the card script.
	msgs, err := wire.ReadFrame(&conn)
	must(err)
	open := msgs[0].(*wire.Open)
	pt, err := suite.OpenWithReaderKey(suite.CipherSM4, readerKey, open.ReaderSerial, open.Sealed)
	must(err)
	ps, err := wire.UnmarshalPreSession(pt)
	must(err)
	chosen := open.KeyShares[0]
	samEph, _ := suite.Generate(chosen.Suite, nil)
	accept := &wire.Accept{SessionID: [16]byte{0xAB}, Suite: chosen.Suite, Public: samEph.Public()}
	samSess, err := samEph.Agree(chosen.Public,
		wire.Transcript(open.ReaderSerial, chosen.Public, accept.SessionID, accept.Suite, accept.Public), false)
	must(err)
	script, _ := ga467.EncodeCardFrames([][]byte{{0x00, 0x88, 0x00, 0x52}, {0x00, 0xB0, 0x00, 0x00}})
	must(wire.WriteFrame(&conn, accept,
		&wire.FindResponse{Done: true, SW3: ga467.SW3CardFound, Sealed: samSess.Seal([]byte{0, 0, 0, 0})},
		&wire.SelectResponse{Done: true, SW3: ga467.SW3OK, Sealed: samSess.Seal(ps.CardSerial[:])},
		&wire.Relay{Sealed: samSess.Seal(script)}))

	// Reader: agree, open every record in order, run the script, frame 2.
	msgs, err = wire.ReadFrame(&conn)
	must(err)
	acc := msgs[0].(*wire.Accept)
	mine := eph[acc.Suite]
	sess, err := mine.Agree(acc.Public, wire.Transcript("R-0001", mine.Public(), acc.SessionID, acc.Suite, acc.Public), true)
	must(err)
	_, err = sess.Open(msgs[1].(*wire.FindResponse).Sealed)
	must(err)
	serial, err := sess.Open(msgs[2].(*wire.SelectResponse).Sealed)
	must(err)
	plain, err := sess.Open(msgs[3].(*wire.Relay).Sealed)
	must(err)
	cmds, _ := ga467.DecodeCardFrames(plain)
	var replies [][]byte
	for range cmds { // the card answers every command with data and 90 00
		replies = append(replies, []byte{0xCA, 0xFE, 0x90, 0x00})
	}
	enc, _ := ga467.EncodeCardFrames(replies)
	must(wire.WriteFrame(&conn, &wire.Relay{Sealed: sess.Seal(enc)}))

	// SAM side: the card's replies in, the result out.
	msgs, err = wire.ReadFrame(&conn)
	must(err)
	plain, err = samSess.Open(msgs[0].(*wire.Relay).Sealed)
	must(err)
	got, _ := ga467.DecodeCardFrames(plain)
	must(wire.WriteFrame(&conn, &wire.Result{SW3: ga467.SW3OK, Sealed: samSess.Seal([]byte("text+photo"))}))

	// Reader: the result.
	msgs, err = wire.ReadFrame(&conn)
	must(err)
	res := msgs[0].(*wire.Result)
	info, err := sess.Open(res.Sealed)
	must(err)
	fmt.Printf("suite %v, serial %x, %d card replies, SW3 %02X, %s\n", acc.Suite, serial, len(got), res.SW3, info)
	// Output: suite GM, serial 0102030405060708, 2 card replies, SW3 90, text+photo
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func ExampleError() {
	var err error = &wire.Error{Code: wire.Busy, RetryAfter: 50e6, Message: "no idle SAM"}
	fmt.Println(err)
	fmt.Println(wire.Busy.Retryable())
	// Output:
	// samrack: 301 busy, retry after 50ms: no idle SAM
	// true
}
