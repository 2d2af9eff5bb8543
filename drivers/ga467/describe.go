package ga467

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Description is a captured frame explained for a hardware team: what
// `samctl ga467 decode` prints. Decoded personal data is redacted.
type Description struct {
	Direction string              `json:"direction"` // "host→SAM" or "SAM→host"
	Len       int                 `json:"len"`
	Checksum  string              `json:"checksum"` // "ok" or what was wrong
	Cmd       string              `json:"cmd,omitempty"`
	Para      string              `json:"para,omitempty"`
	SW        string              `json:"sw,omitempty"`
	Meaning   string              `json:"meaning"`
	Data      string              `json:"data,omitempty"` // hex
	DataLen   int                 `json:"data_len"`
	Details   []string            `json:"details,omitempty"`
	Garbage   int                 `json:"skipped_bytes,omitempty"` // bytes before the preamble
	Reading   *ReadingDescription `json:"reading,omitempty"`

	personal bool
}

// ReadingDescription is a read reply (30 01 or 30 10) explained.
type ReadingDescription struct {
	Order           string  `json:"order"` // "big-endian" (GA 467) or "little-endian" (not GA 467)
	TextLen         int     `json:"text_len"`
	PhotoLen        int     `json:"photo_len"`
	WithFingerprint bool    `json:"with_fingerprint"` // the 30 10 form
	FingerprintLen  int     `json:"fingerprint_len"`
	CardType        string  `json:"card_type,omitempty"`
	TextError       string  `json:"text_error,omitempty"`
	Fields          []Field `json:"fields,omitempty"` // decoded text fields, only when asked for (personal data)
}

// DescribeOptions tune Describe.
type DescribeOptions struct {
	Reply    bool // read the frame as a SAM→host reply
	Command  bool // read the frame as a host→SAM command
	Personal bool // show the decoded text fields of a read reply (personal data)
}

var cmdNames = map[[2]byte]string{
	{CmdReset, ParaFF}:         "reset SAM",
	{CmdStatus, ParaFF}:        "SAM status / self-test",
	{CmdSAMID, ParaFF}:         "read SAM ID",
	{CmdCard, ParaFind}:        "find card",
	{CmdCard, ParaSelect}:      "select card",
	{CmdRead, ParaReadText}:    "read text + photo",
	{CmdRead, ParaReadAddress}: "read newest appended address",
	{CmdRead, ParaReadAll}:     "read text + photo + fingerprint",
	{CmdSetMaxRF, ParaFF}:      "set max RF frame bytes",
	{CmdCardReply, 0}:          "card replies (samrack tunnel)",
	{CmdSetBaud, 0}:            "set UART 115200",
	{CmdSetBaud, 1}:            "set UART 57600",
	{CmdSetBaud, 2}:            "set UART 38400",
	{CmdSetBaud, 3}:            "set UART 19200",
	{CmdSetBaud, 4}:            "set UART 9600",
}

// Describe explains one captured frame (garbage before the preamble is
// skipped and counted). asReply forces the SAM→host reading; otherwise a
// frame whose first two body bytes are 00 00 (SW1 SW2) is taken for a reply.
func Describe(b []byte, asReply, asCommand bool) (*Description, error) {
	return DescribeWith(b, DescribeOptions{Reply: asReply, Command: asCommand})
}

// DescribeWith is Describe with options. Without Personal the decoded text
// fields of a read reply are withheld: only their names and sizes show.
func DescribeWith(b []byte, o DescribeOptions) (*Description, error) {
	asReply, asCommand := o.Reply, o.Command
	d := &Description{personal: o.Personal}
	i := strings.Index(string(b), string(Preamble[:]))
	if i < 0 {
		return nil, ErrNoPreamble
	}
	d.Garbage, b = i, b[i:]
	if len(b) < headerLen+1 {
		return nil, fmt.Errorf("%w: %d bytes", ErrShortFrame, len(b))
	}
	d.Len = int(binary.BigEndian.Uint16(b[5:7]))
	if d.Len > MaxLen || d.Len < 3 {
		return nil, fmt.Errorf("%w: LEN %d", ErrLength, d.Len)
	}
	if len(b) < headerLen+d.Len {
		return nil, fmt.Errorf("%w: LEN %d but only %d bytes follow it", ErrShortFrame, d.Len, len(b)-headerLen)
	}
	if len(b) > headerLen+d.Len {
		d.Details = append(d.Details, fmt.Sprintf("%d bytes after the frame ignored", len(b)-headerLen-d.Len))
	}
	frame := b[:headerLen+d.Len]
	d.Checksum = "ok"
	if x := xor(frame[5:]); x != 0 {
		d.Checksum = fmt.Sprintf("bad: got %02X, want %02X", frame[len(frame)-1], x^frame[len(frame)-1])
	}
	body := frame[headerLen : len(frame)-1]
	reply := asReply || (!asCommand && len(body) >= 3 && body[0] == 0 && body[1] == 0)
	if reply && len(body) < 3 {
		return nil, fmt.Errorf("%w: a reply needs SW1 SW2 SW3", ErrShortFrame)
	}
	if reply {
		r := Reply{SW1: body[0], SW2: body[1], SW3: body[2], Data: body[3:]}
		d.Direction = "SAM→host"
		d.SW = fmt.Sprintf("%02X %02X %02X", r.SW1, r.SW2, r.SW3)
		d.Meaning = StatusText(r.SW3)
		d.setData(r.Data)
		d.Details = append(d.Details, d.describeReplyData(r)...)
		return d, nil
	}
	c := Command{Cmd: body[0], Para: body[1], Data: body[2:]}
	d.Direction = "host→SAM"
	d.Cmd, d.Para = fmt.Sprintf("%02X", c.Cmd), fmt.Sprintf("%02X", c.Para)
	d.Meaning = cmdNames[[2]byte{c.Cmd, c.Para}]
	if d.Meaning == "" {
		d.Meaning = "unknown command"
	}
	d.setData(c.Data)
	if c.Cmd == CmdCardReply {
		d.Details = append(d.Details, describeCardFrames(c.Data)...)
	}
	return d, nil
}

func (d *Description) setData(b []byte) {
	d.DataLen = len(b)
	if len(b) > 0 {
		d.Data = strings.ToUpper(hex.EncodeToString(b))
	}
}

func (d *Description) describeReplyData(r Reply) []string {
	var out []string
	switch {
	case r.SW3 == SW3CardExchange:
		out = append(out, describeCardFrames(r.Data)...)
	case len(r.Data) == SAMIDLen:
		if id, err := DecodeSAMID(r.Data); err == nil {
			out = append(out, "SAM ID "+id.String()+" (if this answers 12 FF)")
		}
	case r.SW3 == SW3CardFound && len(r.Data) == 4:
		out = append(out, "card management info "+strings.ToUpper(hex.EncodeToString(r.Data)))
	case len(r.Data) == 8:
		out = append(out, fmt.Sprintf("card serial %X (if this answers 20 02)", r.Data))
	case len(r.Data) >= 4+TextLen:
		out = append(out, d.describeReading(r.Data)...)
	}
	return out
}

func describeCardFrames(b []byte) []string {
	frames, err := DecodeCardFrames(b)
	if err != nil {
		return []string{"card frames: " + err.Error()}
	}
	out := []string{fmt.Sprintf("%d card frame(s)", len(frames))}
	for i, f := range frames {
		s := strings.ToUpper(hex.EncodeToString(f))
		if len(s) > 48 {
			s = s[:48] + "…"
		}
		out = append(out, fmt.Sprintf("  [%d] %d bytes %s", i, len(f), s))
	}
	return out
}

// describeReading explains the DATA of a read reply, decoded by the one
// read-reply codec (SniffReadReply: either form, either length order).
func (d *Description) describeReading(data []byte) []string {
	rr, order, err := SniffReadReply(data)
	if err != nil {
		return []string{"read reply does not decode: " + err.Error()}
	}
	rd := &ReadingDescription{Order: "big-endian", TextLen: len(rr.Text), PhotoLen: len(rr.Photo),
		WithFingerprint: rr.WithFingerprint, FingerprintLen: len(rr.Fingerprint)}
	d.Reading = rd
	lens := fmt.Sprintf("text %d, photo %d", rd.TextLen, rd.PhotoLen)
	form := "30 01 form"
	if rr.WithFingerprint {
		lens += fmt.Sprintf(", fingerprint %d", rd.FingerprintLen)
		form = "30 10 form"
		if rd.FingerprintLen == 0 {
			lens += " (card without fingerprints)"
		}
	}
	out := []string{fmt.Sprintf("read reply (%s): lengths %s bytes, big-endian as GA 467 has them", form, lens)}
	if order != ReplyOrder {
		rd.Order = "little-endian"
		out[0] = fmt.Sprintf("read reply (%s): lengths %s bytes, LITTLE-endian: not what a SAM-V sends (GA 467 lengths are big-endian)", form, lens)
	}
	out = append(out, fmt.Sprintf("photo: %d bytes (WLT)", rd.PhotoLen))
	id, err := DecodeText(rr.Text)
	if err != nil {
		rd.TextError = err.Error()
		return append(out, "text block does not decode: "+err.Error())
	}
	rd.CardType = id.Type.String()
	out = append(out, "text block: "+rd.CardType+" card")
	for _, f := range id.Fields() {
		if d.personal {
			rd.Fields = append(rd.Fields, f)
			out = append(out, fmt.Sprintf("  %s: %s", f.Name, f.Value))
		} else {
			out = append(out, fmt.Sprintf("  %s: %d characters (withheld: personal data; --personal shows it)", f.Name, utf8.RuneCountInString(f.Value)))
		}
	}
	return out
}
