package wire

import "github.com/samrack/samrack/api/suite"

// Transcript is the handshake transcript both sides feed to
// suite.Ephemeral.Agree. Each variable field carries its length in one byte,
// as in the Open and Accept messages:
//
//	len u8 | reader serial            (Open.ReaderSerial)
//	len u8 | reader public key        (Open.KeyShares[i].Public of the chosen suite)
//	session ID (16)                   (Accept.SessionID)
//	suite u8                          (Accept.Suite)
//	len u8 | SAM-side public key      (Accept.Public)
//
// Inputs come from decoded messages and are within the wire bounds
// (MaxReaderSerial, MaxPublic); longer inputs are cut to those bounds.
func Transcript(readerSerial string, readerPublic []byte, sessionID [16]byte, s suite.ID, samPublic []byte) []byte {
	readerSerial = readerSerial[:min(len(readerSerial), MaxReaderSerial)]
	readerPublic = readerPublic[:min(len(readerPublic), MaxPublic)]
	samPublic = samPublic[:min(len(samPublic), MaxPublic)]
	b := make([]byte, 0, 3+len(readerSerial)+len(readerPublic)+16+1+len(samPublic))
	b = append(b, byte(len(readerSerial)))
	b = append(b, readerSerial...)
	b = append(b, byte(len(readerPublic)))
	b = append(b, readerPublic...)
	b = append(b, sessionID[:]...)
	b = append(b, byte(s))
	b = append(b, byte(len(samPublic)))
	b = append(b, samPublic...)
	return b
}
