package ga467

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// TextLen is the size of the text block of every card type.
const TextLen = 256

// typeOffset is the byte offset of the card-type mark in the text block.
const typeOffset = 248

// CardType tells the layout of a text block, by the character at byte
// offset 248 (UTF-16LE code unit 124).
type CardType byte

const (
	Resident        CardType = ' ' // resident ID card (no type mark)
	HKMacaoTaiwan   CardType = 'J' // Hong Kong/Macao/Taiwan residence permit
	ForeignPerm     CardType = 'I' // foreign permanent resident ID card (2017)
	ForeignPerm2023 CardType = 'Y' // foreign permanent resident ID card (2023)
)

// String names the card type.
func (t CardType) String() string {
	switch t {
	case Resident:
		return "resident"
	case HKMacaoTaiwan:
		return "HK/Macao/Taiwan permit"
	case ForeignPerm:
		return "foreign permanent resident (2017)"
	case ForeignPerm2023:
		return "foreign permanent resident (2023)"
	}
	return fmt.Sprintf("card type %#02x", byte(t))
}

// LongTerm is the ValidTo of a card that does not expire.
const LongTerm = "长期"

// Identity is the decoded text block. It is personal information: never log
// or store it. Fields a card type does not have are empty. Strings are
// trimmed of padding spaces.
//
// Identity deliberately has no String method; use Redacted for debugging.
type Identity struct {
	Type          CardType
	Name          string // Chinese name (every type that has one)
	EnglishName   string // I, Y (Y: both parts joined)
	Sex           string // "1" male, "2" female
	Nation        string // resident, J: GB/T 3304 "01".."56", 97, 98
	Birth         string // YYYYMMDD
	Address       string // resident, J
	Number        string // ID number (resident, J, Y) or permit number (I)
	Authority     string // issuing authority (resident, J)
	ValidFrom     string // YYYYMMDD
	ValidTo       string // YYYYMMDD or "长期"
	PassNumber    string // J: pass number
	IssueCount    string // J: issue count; Y: renewal count
	Nationality   string // I, Y: ISO 3166 alpha-3 country code
	Version       string // I: card version
	AuthorityCode string // I: issuing authority code
	OldCardLink   string // Y: link to the old card
}

// Redacted is a form of id that is safe in debug output: the card type and
// the number with all but its first 6 and last character masked.
func (id *Identity) Redacted() string {
	if id == nil {
		return "<nil identity>"
	}
	r := []rune(id.Number)
	if len(r) > 7 {
		for i := 6; i < len(r)-1; i++ {
			r[i] = '*'
		}
	} else {
		for i := range r {
			r[i] = '*'
		}
	}
	return fmt.Sprintf("%v %s", id.Type, string(r))
}

// Errors of the text decoder. Errors about a field name the field, never its
// value: the value is personal information.
var (
	ErrTextLength = errors.New("ga467: text block is not 256 bytes")
	ErrTextType   = errors.New("ga467: unknown card type in text block")
	ErrTextField  = errors.New("ga467: malformed text field")
	ErrCheckDigit = errors.New("ga467: ID number check digit is wrong")
)

// span is a run of bytes of the text block.
type span struct{ off, n int }

// textField is one field of a layout. A field may be split over several
// spans (the English name of the 2023 card); its UTF-16 code units fill
// them in order.
type textField struct {
	name  string
	get   func(*Identity) *string
	spans []span
	check func(string) error // nil: free text
}

func (f textField) size() int {
	n := 0
	for _, s := range f.spans {
		n += s.n
	}
	return n
}

func at(off, n int) []span { return []span{{off, n}} }

// Accessors of the Identity fields.
func name(id *Identity) *string          { return &id.Name }
func englishName(id *Identity) *string   { return &id.EnglishName }
func sex(id *Identity) *string           { return &id.Sex }
func nation(id *Identity) *string        { return &id.Nation }
func birth(id *Identity) *string         { return &id.Birth }
func address(id *Identity) *string       { return &id.Address }
func number(id *Identity) *string        { return &id.Number }
func authority(id *Identity) *string     { return &id.Authority }
func validFrom(id *Identity) *string     { return &id.ValidFrom }
func validTo(id *Identity) *string       { return &id.ValidTo }
func passNumber(id *Identity) *string    { return &id.PassNumber }
func issueCount(id *Identity) *string    { return &id.IssueCount }
func nationality(id *Identity) *string   { return &id.Nationality }
func version(id *Identity) *string       { return &id.Version }
func authorityCode(id *Identity) *string { return &id.AuthorityCode }
func oldCardLink(id *Identity) *string   { return &id.OldCardLink }

// residentFields is the resident layout up to the validity dates, shared
// with the J permit.
var residentFields = []textField{
	{"name", name, at(0, 30), nil},
	{"sex", sex, at(30, 2), checkSex},
	{"nation", nation, at(32, 4), nil},
	{"birth date", birth, at(36, 16), checkDate},
	{"address", address, at(52, 70), nil},
	{"ID number", number, at(122, 36), ValidIDNumber},
	{"issuing authority", authority, at(158, 30), nil},
	{"valid from", validFrom, at(188, 16), checkDate},
	{"valid to", validTo, at(204, 16), checkValidTo},
}

// layouts are the field tables of the text block, per card type (api/PROTOCOL.md,
// appendix A, gives the same tables to reader makers). Bytes no field
// covers are reserved: ignored on decode, spaces on encode (except the type
// mark at offset 248).
var layouts = map[CardType][]textField{
	Resident: residentFields,
	HKMacaoTaiwan: append(residentFields[:len(residentFields):len(residentFields)],
		textField{"pass number", passNumber, at(220, 18), nil},
		textField{"issue count", issueCount, at(238, 4), nil},
		// reserved 242..248, type 248..250, reserved 250..256
	),
	ForeignPerm: {
		{"English name", englishName, at(0, 120), nil},
		{"sex", sex, at(120, 2), checkSex},
		{"permit number", number, at(122, 30), nil},
		{"nationality", nationality, at(152, 6), nil},
		{"name", name, at(158, 30), nil},
		{"valid from", validFrom, at(188, 16), checkDate},
		{"valid to", validTo, at(204, 16), checkValidTo},
		{"birth date", birth, at(220, 16), checkDate},
		{"version", version, at(236, 4), nil},
		{"authority code", authorityCode, at(240, 8), nil},
		// type 248..250, reserved 250..256
	},
	// The English name of the 2023 card has two parts: 70 bytes after the
	// birth date and 22 bytes after the validity dates. This keeps the ID
	// number (122) and the validity dates (188, 204) where the resident
	// card has them.
	ForeignPerm2023: {
		{"name", name, at(0, 30), nil},
		{"renewal count", issueCount, at(32, 4), nil},
		{"sex", sex, at(30, 2), checkSex},
		{"birth date", birth, at(36, 16), checkDate},
		{"English name", englishName, []span{{52, 70}, {220, 22}}, nil},
		{"ID number", number, at(122, 36), ValidIDNumber},
		// reserved 158..188
		{"valid from", validFrom, at(188, 16), checkDate},
		{"valid to", validTo, at(204, 16), checkValidTo},
		{"nationality", nationality, at(242, 6), nil},
		// type 248..250
		{"old-card link", oldCardLink, at(250, 6), nil},
	},
}

// DecodeText decodes a 256-byte text block (the first part of a read
// reply). It validates the card type, the sex code, the dates and, for
// 18-character ID numbers, the check digit. Errors wrap ErrTextLength,
// ErrTextType, ErrTextField or ErrCheckDigit and name the field.
func DecodeText(b []byte) (*Identity, error) {
	if len(b) != TextLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrTextLength, len(b))
	}
	t, err := textType(b)
	if err != nil {
		return nil, err
	}
	id := &Identity{Type: t}
	for _, f := range layouts[t] {
		units := make([]uint16, 0, f.size()/2)
		for _, s := range f.spans {
			for i := s.off; i < s.off+s.n; i += 2 {
				units = append(units, binary.LittleEndian.Uint16(b[i:]))
			}
		}
		for len(units) > 0 && units[len(units)-1] == ' ' {
			units = units[:len(units)-1]
		}
		v, ok := decodeUTF16(units)
		if !ok {
			return nil, fmt.Errorf("%w: %s: invalid UTF-16", ErrTextField, f.name)
		}
		if err := checkField(f, v); err != nil {
			return nil, err
		}
		*f.get(id) = v
	}
	return id, nil
}

// Field is one decoded field of a text block, named as in its layout.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Fields lists the fields of id's card type in layout order. The values
// are personal information: show them only to whoever holds the card data
// already (a hardware team decoding its own capture); never log them.
func (id *Identity) Fields() []Field {
	var out []Field
	for _, f := range layouts[id.Type] {
		out = append(out, Field{Name: f.name, Value: *f.get(id)})
	}
	return out
}

// textType reads the card-type mark. A resident card has a space (some
// writers leave a zero) at offset 248.
func textType(b []byte) (CardType, error) {
	u := binary.LittleEndian.Uint16(b[typeOffset:])
	switch u {
	case ' ', 0:
		return Resident, nil
	case uint16(HKMacaoTaiwan), uint16(ForeignPerm), uint16(ForeignPerm2023):
		return CardType(u), nil
	}
	return 0, ErrTextType
}

// decodeUTF16 is utf16.Decode that refuses unpaired surrogates instead of
// replacing them, so that what decodes re-encodes to the same bytes.
func decodeUTF16(units []uint16) (string, bool) {
	var sb strings.Builder
	for i := 0; i < len(units); i++ {
		u := rune(units[i])
		if utf16.IsSurrogate(u) {
			if i+1 == len(units) {
				return "", false
			}
			r := utf16.DecodeRune(u, rune(units[i+1]))
			if r == utf8.RuneError {
				return "", false
			}
			sb.WriteRune(r)
			i++
			continue
		}
		sb.WriteRune(u)
	}
	return sb.String(), true
}

func checkField(f textField, v string) error {
	if f.check == nil {
		return nil
	}
	if err := f.check(v); err != nil {
		if errors.Is(err, ErrCheckDigit) || errors.Is(err, ErrTextField) {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		return fmt.Errorf("%w: %s: %w", ErrTextField, f.name, err)
	}
	return nil
}

// EncodeText encodes id as a 256-byte text block: the inverse of
// DecodeText. It validates id the way DecodeText does, and fails if a
// field does not fit its bytes or is set although id's card type has no
// such field.
func EncodeText(id *Identity) ([]byte, error) {
	if id == nil {
		return nil, fmt.Errorf("%w: nil identity", ErrTextField)
	}
	fields, ok := layouts[id.Type]
	if !ok {
		return nil, ErrTextType
	}
	b := make([]byte, TextLen)
	for i := 0; i < TextLen; i += 2 {
		b[i] = ' '
	}
	b[typeOffset] = byte(id.Type)

	used := map[*string]bool{}
	for _, f := range fields {
		p := f.get(id)
		used[p] = true
		if !utf8.ValidString(*p) {
			return nil, fmt.Errorf("%w: %s: invalid UTF-8", ErrTextField, f.name)
		}
		if err := checkField(f, *p); err != nil {
			return nil, err
		}
		units := utf16.Encode([]rune(*p))
		if 2*len(units) > f.size() {
			return nil, fmt.Errorf("%w: %s: %d UTF-16 units do not fit in %d bytes",
				ErrTextField, f.name, len(units), f.size())
		}
		for _, s := range f.spans {
			for i := s.off; i < s.off+s.n && len(units) > 0; i += 2 {
				binary.LittleEndian.PutUint16(b[i:], units[0])
				units = units[1:]
			}
		}
	}
	for _, f := range allFields {
		if p := f.get(id); !used[p] && *p != "" {
			return nil, fmt.Errorf("%w: %s: a %v card has no such field", ErrTextField, f.name, id.Type)
		}
	}
	return b, nil
}

// allFields names every Identity string field, to refuse values the
// layout of a card type would drop.
var allFields = []textField{
	{name: "name", get: name},
	{name: "English name", get: englishName},
	{name: "sex", get: sex},
	{name: "nation", get: nation},
	{name: "birth date", get: birth},
	{name: "address", get: address},
	{name: "number", get: number},
	{name: "issuing authority", get: authority},
	{name: "valid from", get: validFrom},
	{name: "valid to", get: validTo},
	{name: "pass number", get: passNumber},
	{name: "issue count", get: issueCount},
	{name: "nationality", get: nationality},
	{name: "version", get: version},
	{name: "authority code", get: authorityCode},
	{name: "old-card link", get: oldCardLink},
}

func checkSex(s string) error {
	if s != "1" && s != "2" {
		return errors.New(`not "1" or "2"`)
	}
	return nil
}

// checkDate accepts a calendar date written YYYYMMDD.
func checkDate(s string) error {
	if len(s) != 8 || !allDigits(s) {
		return errors.New("not YYYYMMDD")
	}
	if _, err := time.Parse("20060102", s); err != nil {
		return errors.New("not a calendar date")
	}
	return nil
}

func checkValidTo(s string) error {
	if s == LongTerm {
		return nil
	}
	return checkDate(s)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CheckDigit returns the ISO 7064 MOD 11-2 check character ('0'..'9' or
// 'X') of the first 17 digits of an 18-character ID number (GB 11643).
// first17 must be 17 ASCII digits; otherwise the error wraps ErrTextField.
func CheckDigit(first17 string) (byte, error) {
	if len(first17) != 17 || !allDigits(first17) {
		return 0, fmt.Errorf("%w: ID number: want 17 digits before the check digit", ErrTextField)
	}
	sum, w := 0, 1 // w = 2^(i) mod 11, walking from the check digit leftwards
	for i := 16; i >= 0; i-- {
		w = w * 2 % 11
		sum += int(first17[i]-'0') * w
	}
	c := (12 - sum%11) % 11
	if c == 10 {
		return 'X', nil
	}
	return byte('0' + c), nil
}

// ValidIDNumber checks an 18-character ID number: 17 digits and the ISO
// 7064 MOD 11-2 check character (upper-case X for 10). A wrong check
// character wraps ErrCheckDigit; a malformed number wraps ErrTextField.
// Neither error includes the number.
func ValidIDNumber(s string) error {
	if len(s) != 18 {
		return fmt.Errorf("%w: ID number: want 18 characters", ErrTextField)
	}
	want, err := CheckDigit(s[:17])
	if err != nil {
		return err
	}
	if s[17] != want {
		return ErrCheckDigit
	}
	return nil
}
