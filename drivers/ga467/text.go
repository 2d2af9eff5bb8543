package ga467

import "errors"

// TextLen is the size of the text block of every card type.
const TextLen = 256

// CardType tells the layout of a text block, by the character at byte
// offset 248 (UTF-16LE code unit 124).
type CardType byte

const (
	Resident        CardType = ' ' // resident ID card (no type mark)
	HKMacaoTaiwan   CardType = 'J' // Hong Kong/Macao/Taiwan residence permit
	ForeignPerm     CardType = 'I' // foreign permanent resident ID card (2017)
	ForeignPerm2023 CardType = 'Y' // foreign permanent resident ID card (2023)
)

// Identity is the decoded text block. It is personal information: never log
// or store it. Fields a card type does not have are empty. Strings are
// trimmed of padding spaces.
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

// Errors of the text decoder.
var (
	ErrTextLength = errors.New("ga467: text block is not 256 bytes")
	ErrTextType   = errors.New("ga467: unknown card type in text block")
	ErrTextField  = errors.New("ga467: malformed text field")
	ErrCheckDigit = errors.New("ga467: ID number check digit is wrong")
)
