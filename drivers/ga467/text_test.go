package ga467

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf16"
)

// Realistic, invented identities of every card type. The numbers carry
// correct check digits.
var (
	residentID = Identity{
		Type:      Resident,
		Name:      "王小明",
		Sex:       "1",
		Nation:    "01",
		Birth:     "19491231",
		Address:   "北京市西城区复兴门外大街999号院11号楼3单元502室",
		Number:    "11010519491231002X",
		Authority: "北京市公安局西城分局",
		ValidFrom: "20150101",
		ValidTo:   LongTerm,
	}
	permitID = Identity{
		Type:       HKMacaoTaiwan,
		Name:       "陈大文",
		Sex:        "1",
		Birth:      "19800101",
		Address:    "广东省深圳市福田区福华一路88号",
		Number:     "810000198001010014",
		Authority:  "深圳市公安局",
		ValidFrom:  "20200315",
		ValidTo:    "20250314",
		PassNumber: "H12345678",
		IssueCount: "01",
	}
	foreign2017ID = Identity{
		Type:          ForeignPerm,
		EnglishName:   "ZHANG, SHAN MICHELLE",
		Name:          "张珊",
		Sex:           "2",
		Number:        "CAN310099011234",
		Nationality:   "CAN",
		ValidFrom:     "20190620",
		ValidTo:       "20290619",
		Birth:         "19900307",
		Version:       "01",
		AuthorityCode: "1500",
	}
	foreign2023ID = Identity{
		Type:        ForeignPerm2023,
		Name:        "马克",
		Sex:         "1",
		IssueCount:  "00",
		Birth:       "19850315",
		EnglishName: "WILLIAMSON-FITZGERALD, MARK ALEXANDER JONATHAN", // 46 characters: both parts
		Number:      "933150198503150032",
		ValidFrom:   "20231201",
		ValidTo:     "20331130",
		Nationality: "GBR",
		OldCardLink: "A1",
	}
)

func TestTextRoundTrip(t *testing.T) {
	short2023 := foreign2023ID
	short2023.EnglishName = "SMITH, ANNA"
	for _, want := range []Identity{residentID, permitID, foreign2017ID, foreign2023ID, short2023} {
		t.Run(want.Type.String(), func(t *testing.T) {
			b, err := EncodeText(&want)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != TextLen {
				t.Fatalf("EncodeText gave %d bytes", len(b))
			}
			mark := rune(binary.LittleEndian.Uint16(b[typeOffset:]))
			if mark != rune(want.Type) {
				t.Errorf("type mark %q, want %q", mark, rune(want.Type))
			}
			got, err := DecodeText(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("DecodeText(EncodeText(id)) = %+v, want %+v", *got, want)
			}
		})
	}
}

// utf16le is the UTF-16LE form of s, padded with spaces to n bytes.
func utf16le(s string, n int) []byte {
	b := make([]byte, 0, n)
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	for len(b) < n {
		b = append(b, ' ', 0)
	}
	return b
}

// TestTextLayout checks byte offsets against the published field tables (PROTOCOL.md appendix A),
// independently of the layout tables of text.go.
func TestTextLayout(t *testing.T) {
	tests := []struct {
		id     Identity
		fields []struct {
			off, n int
			v      string
		}
	}{
		{residentID, []struct {
			off, n int
			v      string
		}{{0, 30, "王小明"}, {30, 2, "1"}, {32, 4, "01"}, {36, 16, "19491231"},
			{52, 70, residentID.Address}, {122, 36, "11010519491231002X"},
			{158, 30, "北京市公安局西城分局"}, {188, 16, "20150101"}, {204, 16, "长期"},
			{220, 36, ""}}},
		{permitID, []struct {
			off, n int
			v      string
		}{{0, 30, "陈大文"}, {122, 36, "810000198001010014"}, {204, 16, "20250314"},
			{220, 18, "H12345678"}, {238, 4, "01"}, {242, 6, ""}, {248, 2, "J"}, {250, 6, ""}}},
		{foreign2017ID, []struct {
			off, n int
			v      string
		}{{0, 120, "ZHANG, SHAN MICHELLE"}, {120, 2, "2"}, {122, 30, "CAN310099011234"},
			{152, 6, "CAN"}, {158, 30, "张珊"}, {188, 16, "20190620"}, {204, 16, "20290619"},
			{220, 16, "19900307"}, {236, 4, "01"}, {240, 8, "1500"}, {248, 2, "I"}, {250, 6, ""}}},
		{foreign2023ID, []struct {
			off, n int
			v      string
		}{{0, 30, "马克"}, {30, 2, "1"}, {32, 4, "00"}, {36, 16, "19850315"},
			{52, 70, "WILLIAMSON-FITZGERALD, MARK ALEXAND"}, {122, 36, "933150198503150032"},
			{158, 30, ""}, {188, 16, "20231201"}, {204, 16, "20331130"},
			{220, 22, "ER JONATHAN"}, {242, 6, "GBR"}, {248, 2, "Y"}, {250, 6, "A1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.id.Type.String(), func(t *testing.T) {
			b, err := EncodeText(&tt.id)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range tt.fields {
				if want := utf16le(f.v, f.n); !bytes.Equal(b[f.off:f.off+f.n], want) {
					t.Errorf("bytes %d..%d = % X, want % X", f.off, f.off+f.n, b[f.off:f.off+f.n], want)
				}
			}
		})
	}
}

func TestCheckDigit(t *testing.T) {
	for _, valid := range []string{
		"11010519491231002X", // GB 11643 example
		"440524188001010014", // GB 11643 example
		"110101199003074477",
		"83000019920530002X",
		"933150198503150032",
	} {
		c, err := CheckDigit(valid[:17])
		if err != nil || c != valid[17] {
			t.Errorf("CheckDigit(%s) = %q, %v; want %q", valid[:17], c, err, valid[17])
		}
		if err := ValidIDNumber(valid); err != nil {
			t.Errorf("ValidIDNumber(%s) = %v", valid, err)
		}
	}
	tests := []struct {
		number string
		want   error
	}{
		{"110105194912310021", ErrCheckDigit},
		{"11010519491231002x", ErrCheckDigit}, // lower-case x
		{"440524188001010015", ErrCheckDigit},
		{"44052418800101001", ErrTextField},
		{"4405241880010100144", ErrTextField},
		{"44052418800101A014", ErrTextField},
		{"", ErrTextField},
		{"１１０１０５１９４９１２３１００", ErrTextField}, // full-width digits
	}
	for _, tt := range tests {
		err := ValidIDNumber(tt.number)
		if !errors.Is(err, tt.want) {
			t.Errorf("ValidIDNumber(%q) = %v, want %v", tt.number, err, tt.want)
		}
		if err != nil && tt.number != "" && strings.Contains(err.Error(), tt.number) {
			t.Errorf("error %q includes the number", err)
		}
	}
	if _, err := CheckDigit("1101051949123100"); !errors.Is(err, ErrTextField) {
		t.Errorf("CheckDigit(16 digits) err = %v", err)
	}
}

// put writes s as UTF-16LE, space-padded, into b[off:off+n].
func put(b []byte, off, n int, s string) { copy(b[off:off+n], utf16le(s, n)) }

func TestDecodeTextErrors(t *testing.T) {
	resident, err := EncodeText(&residentID)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := EncodeText(&foreign2017ID)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		base   []byte
		edit   func(b []byte) []byte
		want   error
		field  string // the error names it
		secret string // the error must not include it
	}{
		{"short", resident, func(b []byte) []byte { return b[:255] }, ErrTextLength, "", ""},
		{"long", resident, func(b []byte) []byte { return append(b, 0) }, ErrTextLength, "", ""},
		{"unknown type", resident, func(b []byte) []byte { put(b, 248, 2, "Z"); return b }, ErrTextType, "", ""},
		{"type mark high byte", resident, func(b []byte) []byte { b[249] = 1; return b }, ErrTextType, "", ""},
		{"sex 3", resident, func(b []byte) []byte { put(b, 30, 2, "3"); return b }, ErrTextField, "sex", ""},
		{"sex empty", resident, func(b []byte) []byte { put(b, 30, 2, ""); return b }, ErrTextField, "sex", ""},
		{"birth 30 February", resident, func(b []byte) []byte { put(b, 36, 16, "19490230"); return b }, ErrTextField, "birth date", "19490230"},
		{"birth month 13", resident, func(b []byte) []byte { put(b, 36, 16, "19491331"); return b }, ErrTextField, "birth date", "19491331"},
		{"birth 7 digits", resident, func(b []byte) []byte { put(b, 36, 16, "1949123"); return b }, ErrTextField, "birth date", "1949123"},
		{"birth long-term", resident, func(b []byte) []byte { put(b, 36, 16, LongTerm); return b }, ErrTextField, "birth date", ""},
		{"valid from letter", resident, func(b []byte) []byte { put(b, 188, 16, "2015010a"); return b }, ErrTextField, "valid from", "2015010a"},
		{"valid to 31 April", resident, func(b []byte) []byte { put(b, 204, 16, "20350431"); return b }, ErrTextField, "valid to", "20350431"},
		{"check digit", resident, func(b []byte) []byte { put(b, 122, 36, "110105194912310021"); return b }, ErrCheckDigit, "ID number", "110105194912310021"},
		{"number too short", resident, func(b []byte) []byte { put(b, 122, 36, "11010519491231002"); return b }, ErrTextField, "ID number", "11010519491231002"},
		{"unpaired surrogate", resident, func(b []byte) []byte { b[0], b[1] = 0x00, 0xD8; return b }, ErrTextField, "name", ""},
		{"2017 card sex", foreign, func(b []byte) []byte { put(b, 120, 2, "M"); return b }, ErrTextField, "sex", ""},
		{"2017 card birth", foreign, func(b []byte) []byte { put(b, 220, 16, "19900229"); return b }, ErrTextField, "birth date", "19900229"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.edit(bytes.Clone(tt.base))
			id, err := DecodeText(b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeText = %v, %v; want %v", id, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name the field %q", err, tt.field)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q includes the field value", err)
			}
			for _, personal := range []string{residentID.Name, residentID.Number, foreign2017ID.EnglishName} {
				if strings.Contains(err.Error(), personal) {
					t.Errorf("error %q includes personal data", err)
				}
			}
		})
	}
}

func TestDecodeTextZeroMarkIsResident(t *testing.T) {
	b, err := EncodeText(&residentID)
	if err != nil {
		t.Fatal(err)
	}
	for i := 220; i < TextLen; i++ {
		b[i] = 0 // reserved bytes left zero by some writers
	}
	id, err := DecodeText(b)
	if err != nil || id.Type != Resident {
		t.Errorf("DecodeText = %v, %v; want a resident card", id, err)
	}
}

func TestEncodeTextErrors(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(id *Identity)
		want  error
		field string
	}{
		{"name too long", func(id *Identity) { id.Name = strings.Repeat("王", 16) }, ErrTextField, "name"},
		{"address too long", func(id *Identity) { id.Address = strings.Repeat("路", 36) }, ErrTextField, "address"},
		{"authority too long", func(id *Identity) { id.Authority = strings.Repeat("局", 16) }, ErrTextField, "issuing authority"},
		{"surrogate pair over the end", func(id *Identity) { id.Name = strings.Repeat("王", 14) + "𠀀" }, ErrTextField, "name"},
		{"field of another card type", func(id *Identity) { id.EnglishName = "WANG" }, ErrTextField, "English name"},
		{"unknown type", func(id *Identity) { id.Type = 'Z' }, ErrTextType, ""},
		{"bad sex", func(id *Identity) { id.Sex = "0" }, ErrTextField, "sex"},
		{"bad date", func(id *Identity) { id.ValidFrom = "20150229" }, ErrTextField, "valid from"},
		{"bad check digit", func(id *Identity) { id.Number = "110105194912310020" }, ErrCheckDigit, "ID number"},
		{"invalid UTF-8", func(id *Identity) { id.Address = "\xff" }, ErrTextField, "address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := residentID
			tt.edit(&id)
			_, err := EncodeText(&id)
			if !errors.Is(err, tt.want) {
				t.Fatalf("EncodeText err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name the field %q", err, tt.field)
			}
		})
	}
	if _, err := EncodeText(nil); !errors.Is(err, ErrTextField) {
		t.Errorf("EncodeText(nil) err = %v", err)
	}
}

func TestEncodeTextFits(t *testing.T) {
	id := residentID
	id.Name = strings.Repeat("王", 15)
	id.Address = strings.Repeat("路", 35)
	b, err := EncodeText(&id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeText(b)
	if err != nil || got.Name != id.Name || got.Address != id.Address {
		t.Errorf("full-width fields did not round-trip: %v", err)
	}
}

func TestRedacted(t *testing.T) {
	tests := []struct {
		id   *Identity
		want string
	}{
		{&residentID, "resident 110105***********X"},
		{&foreign2017ID, "foreign permanent resident (2017) CAN310********4"},
		{&Identity{Type: HKMacaoTaiwan, Number: "1234567"}, "HK/Macao/Taiwan permit *******"},
		{nil, "<nil identity>"},
	}
	for _, tt := range tests {
		got := tt.id.Redacted()
		if got != tt.want {
			t.Errorf("Redacted() = %q, want %q", got, tt.want)
		}
		if tt.id != nil && tt.id.Name != "" && strings.Contains(got, tt.id.Name) {
			t.Errorf("Redacted() = %q includes the name", got)
		}
	}
}

func TestCardTypeString(t *testing.T) {
	if got := CardType('Z').String(); got != "card type 0x5a" {
		t.Errorf("String() = %q", got)
	}
}
