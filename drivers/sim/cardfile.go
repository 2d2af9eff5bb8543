package sim

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/idcard"
)

// CardFileFormat names the card file format in its "format" field.
const CardFileFormat = "samrack-sim-card/1"

// cardFile is the JSON form of a virtual card. Photo and fingerprint are
// base64 (encoding/json's []byte), the serial hex.
type cardFile struct {
	Format      string         `json:"format"`
	Note        string         `json:"note"`
	Serial      string         `json:"serial"`
	Identity    ga467.Identity `json:"identity"`
	Photo       []byte         `json:"photo"`
	Fingerprint []byte         `json:"fingerprint,omitempty"`
}

const cardFileNote = "synthetic test card for samrack simulators: not a real person, test data only"

// SaveCard writes c to path as a JSON card file (for samreader --card).
//
// A card file is test data only: it holds a synthetic identity in clear
// text, which is exactly what must never happen to real card data. It holds
// no key: the card key is derived again from the master key when loaded.
func SaveCard(path string, c *Card) error {
	f := cardFile{
		Format:      CardFileFormat,
		Note:        cardFileNote,
		Serial:      hex.EncodeToString(c.serial[:]),
		Identity:    c.id,
		Photo:       c.photo,
		Fingerprint: c.finger,
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// LoadCard reads a card file written by SaveCard. opts supply what the file
// does not hold (master key, timing); opts.Type and opts.Fingerprint are
// ignored.
func LoadCard(path string, opts CardOptions) (*Card, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f cardFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("sim: card file %s: %w", path, err)
	}
	if f.Format != CardFileFormat {
		return nil, fmt.Errorf("sim: card file %s: format %q, want %q", path, f.Format, CardFileFormat)
	}
	s, err := hex.DecodeString(f.Serial)
	if err != nil || len(s) != idcard.SerialLen {
		return nil, fmt.Errorf("sim: card file %s: serial is not %d hex bytes", path, idcard.SerialLen)
	}
	var serial [idcard.SerialLen]byte
	copy(serial[:], s)
	if len(f.Fingerprint) == 0 {
		f.Fingerprint = nil
	}
	c, err := newCard(serial, f.Identity, f.Photo, f.Fingerprint, opts)
	if err != nil {
		return nil, fmt.Errorf("sim: card file %s: %w", path, err)
	}
	return c, nil
}
