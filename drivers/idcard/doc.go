// Package idcard is the card side of samrack: the frames a SAM exchanges with
// a resident ID card through the card-frame tunnel (see package ga467), the
// crypto both ends compute, and what a reader does with its RF front-end
// (Prefetch, Run). The virtual card and the virtual SAM of package sim, and
// the reader SDK, share it.
//
// # This is samrack's own scheme
//
// The card↔SAM protocol of real resident ID cards is not public. This package
// defines a documented scheme of samrack's own with the real shape — ISO/IEC
// 14443 Type B activation, ISO/IEC 7816-4 APDUs, a mutual challenge–response,
// a card session key, encrypted and MACed file reads, the real file sizes —
// so that readers, the appliance and the simulators can be built and tested
// end to end. A reader does not need to understand any of it beyond Prefetch
// and Run: it passes card frames through. Real SAM-V modules speak the real
// (secret) scheme through the same tunnel; the reader cannot tell.
//
// # Frames
//
// A card frame in the tunnel is what the reader's RF front-end sends to or
// receives from the card, without the CRC_B, SOF/EOF and ISO 14443-4 block
// framing: the reader's front-end adds CRC_B, wraps APDUs in I-blocks (block
// numbering, chaining, waiting-time extensions, CID 0, no NAD) and removes
// all of that from replies. Frames of ISO 14443-3 (REQB, ATTRIB) are sent
// as they are; every other frame is an APDU.
//
//	REQB     05 00 00                      (AFI 00: all families, 1 slot)
//	ATQB     50 | PUPI(4) | APP(4) | PROTO(3)    12 bytes
//	ATTRIB   1D | PUPI(4) | 00 08 01 00    (TR0/TR1 default, SOF/EOF required,
//	                                         max frame 256 bytes, 106 kbit/s,
//	                                         ISO 14443-4, CID 0)
//	answer   00                            (MBLI 0, CID 0)
//
// PUPI is a random number the card picks at every REQB; APP (application
// data) is 00 00 00 00 on every card this package knows, and is the 4 bytes of
// management information a SAM returns for find (GA 467 20 01, SW3 9F).
// PROTO is 00 81 81: 106 kbit/s only, max frame 256 bytes, ISO 14443-4
// compliant, FWI 8 (about 77 ms). A REQB returns the card to the READY state
// from any state, as the RF reset a reader does before polling would.
//
// APDUs (CLA 00: ISO 7816-4; CLA 80: proprietary, in the ISO style):
//
//	GET UID           00 36 00 00 08            → serial(8) 90 00
//	GET CHALLENGE     00 84 00 00 08            → rc(8) 90 00
//	MUTUAL AUTH       80 82 00 00 18 rs(8) ps(16) 10
//	                                            → pc(16) 90 00
//	READ BLOCK        80 B0 FILE BLOCK LE       → ct(n) mac(8) 90 00
//
// Files: FILE 01 text (256 bytes), 02 photo (1024 bytes), 03 fingerprint
// (1024 bytes, absent on cards without fingerprints). A file is read in
// blocks of 256 bytes, BLOCK 0..3; LE is the plaintext length of the block
// with 00 meaning 256, so every card reply is at most 256+8+2 = 266 bytes.
//
// Status words: 90 00 success; 63 00 authentication failed; 67 00 wrong
// length; 69 82 security status not satisfied (read before a successful
// MUTUAL AUTH); 69 85 conditions of use not satisfied (MUTUAL AUTH without a
// fresh challenge); 6A 82 file not found (fingerprint absent, unknown file);
// 6B 00 block beyond the end of the file; 6C XX wrong LE (XX is the right
// one); 6D 00 INS not supported; 6E 00 CLA not supported.
//
// # Card states
//
// A card that enters the field is IDLE. REQB makes it READY (new PUPI);
// ATTRIB with its PUPI makes it ACTIVE (selected). A card answers APDUs only
// when ACTIVE and does not answer anything else (the reader sees a timeout:
// ErrNoCard). GET CHALLENGE draws a fresh rc and cancels any earlier
// authentication; MUTUAL AUTH consumes rc whatever its outcome; READ BLOCK
// needs a successful MUTUAL AUTH since the last GET CHALLENGE or REQB.
//
// # Keys and crypto
//
// HMAC is HMAC-SM3 (GB/T 32905, RFC 2104); SM4 is GB/T 32907. The issuer
// holds a master key M (any length; DevMasterKey in development). Every card
// stores its own card key K, never M:
//
//	K  = HMAC(M, serial)[:16]                                  CardKey
//	ps = HMAC(K, 01 | rc | rs | serial)[:16]   the SAM's proof  SAMProof
//	pc = HMAC(K, 02 | rs | rc | serial)[:16]   the card's proof CardProof
//	S  = HMAC(K, "samrack-idcard-v1 session" | rc | rs)        NewSessionKey
//	Kenc = S[:16], Kmac = S[16:32]
//
// rc is the card's challenge (GET CHALLENGE), rs the SAM's. The card checks
// ps (63 00 if wrong, the SAM reports SW3 31) and answers pc; the SAM checks
// pc (SW3 32 if wrong). Both then hold S. Each READ BLOCK reply is
//
//	ct  = SM4-CTR(Kenc, IV = FILE | BLOCK | 00×14, plaintext block)
//	mac = HMAC(Kmac, 03 | FILE | BLOCK | len(ct) as 2 bytes BE | ct)[:8]
//
// (SessionKey.Seal and SessionKey.Open). A wrong MAC is SW3 33 at the SAM.
// Because S is fresh for every authentication (rc and rs are fresh), a reply
// recorded in one session is useless in the next. The serial is bound into
// both proofs, so a reader that lies about the serial fails authentication.
//
// # The SAM's scripts
//
// A SAM runs GA 467 card commands as these scripts, one tunnel exchange per
// line (a reader runs each line with Run):
//
//	find (20 01):    [REQB]
//	select (20 02):  [ATTRIB(PUPI of the ATQB), GET UID]
//	read (30 01/10): [GET CHALLENGE]
//	                 [MUTUAL AUTH, READ 01/0, READ 02/0..3 (, READ 03/0..3)]
//
// The first four frames are exactly what Prefetch sends, so an appliance that
// holds a reader's Prefetch exchanges (Prefetched) answers the SAM's first
// three exchanges itself and a whole read costs one exchange with the reader.
package idcard
