// Package pcsc is the PC/SC driver of samrack: GA 467 SAM-V modules
// (GA/T 467-2019, see package ga467) in smart-card readers, reached through
// pcsc-lite (https://pcsclite.apdu.fr/, the PC/SC Workgroup specification
// https://pcscworkgroup.com/specifications/) with github.com/ebfe/scard.
//
// A Transport carries GA 467 host commands to the module in one reader;
// samhost.New turns it into a sam.SAM. The driver "pcsc" is registered with
// package sam (dev = the PC/SC reader name). ListReaders discovers readers
// and Watch reports modules inserted and removed (hot swap).
//
// # GA 467 in APDUs
//
// A SAM-V module on PC/SC speaks ISO/IEC 7816-4 APDUs instead of GA 467
// frames on a UART. samrack carries one GA 467 host command per APDU
// (codec: package pcsc/apdu; card side: sim.SAM.ServeVPCD):
//
//	C-APDU  CLA 80 | INS 46 | P1 = CMD | P2 = PARA | 00 Lc(2, BE) | DATA | Le 00 00
//	R-APDU  SW1 SW2 SW3 | DATA | 90 00
//
// In detail:
//
//   - CLA 80 is a proprietary class; INS 46 is "run one GA 467 command".
//   - P1 and P2 are the frame's CMD and PARA; the APDU's data field is the
//     frame's DATA. The preamble, LEN and CHK of the UART frame are not sent:
//     the APDU's own length fields and the link layer (T=1 EDC, USB CRC)
//     replace them, so GA 467's frame errors (SW3 10 checksum, 11 length)
//     cannot occur on PC/SC.
//   - Every command is an extended-length APDU — case 2E (no DATA:
//     80 46 CMD PARA 00 00 00) or 4E — with Le = 00 00: replies reach 2.3 KiB
//     (read with fingerprint) and tunnel scripts up to 8 KiB, more than a
//     short Le, and one form needs no GET RESPONSE chaining. The card accepts
//     short APDUs too.
//   - The response data is the GA 467 reply without its frame: SW1 SW2 SW3
//     then DATA, with ISO status 90 00 whenever the module's GA 467 layer
//     answered, whatever its SW3 says. GA 467 errors stay GA 467 errors
//     (*ga467.StatusError from samhost).
//   - Any other ISO status word means the APDU did not reach the GA 467 layer:
//     6E 00 (CLA not 80), 6D 00 (INS not 46), 67 00 (bad Lc/Le encoding),
//     6F 00 (the module failed without a GA 467 reply). The driver returns
//     them as *apdu.StatusError wrapped in sam.ErrTransport.
//
// The card-frame tunnel needs nothing of its own: a SW3 E0 reply (the SAM
// asks for card frames) is an ordinary R-APDU (00 00 E0 | frames | 90 00),
// and the host's answer, CMD E1, an ordinary C-APDU (80 46 E1 00 …).
//
// Example, SAM status (GA 467 frame AA AA AA 96 69 00 03 11 FF ED):
//
//	→ 80 46 11 FF 00 00 00
//	← 00 00 90 90 00
//
// The virtual SAM's ATR is 3B 88 80 01 "GA467SAM" TCK (T=1; apdu.ATR). The
// driver does not check ATRs.
//
// # Failures
//
// Every PC/SC call runs on a goroutine owned by the Transport, with one
// scard.Context per Transport (a context serialises its calls, so readers
// sharing one would wait on each other). Transact waits for it only until
// its ctx ends, then returns sam.ErrTimeout and marks the transport for a
// card reset (SCardReconnect with SCARD_RESET_CARD) before the next command.
// pcsc-lite cannot cancel an SCardTransmit; a command stuck in pcscd makes
// later Transacts time out too until pcscd lets go. Errors map as follows:
//
//   - no card, card removed, reader gone (SCARD_E_NO_SMARTCARD,
//     SCARD_W_REMOVED_CARD then no card, SCARD_E_UNKNOWN_READER,
//     SCARD_E_READER_UNAVAILABLE): sam.ErrGone. A removed card that is back
//     (SCARD_W_REMOVED_CARD, SCARD_W_RESET_CARD) is reconnected and the
//     command sent once more: it had not reached the card.
//   - pcscd stopped or restarted (SCARD_E_NO_SERVICE, SCARD_E_SERVICE_STOPPED,
//     SCARD_E_INVALID_HANDLE): sam.ErrTransport; the context is released and
//     a new one established at the next call.
//   - SCARD_E_NOT_TRANSACTED or a response shorter than 2 bytes (what pcscd
//     gives when a card goes away mid-command): the driver asks pcscd, within
//     the deadline, whether the card is still there: sam.ErrGone if not,
//     sam.ErrTransport if it is.
//   - any other PC/SC error: sam.ErrTransport.
//
// This package needs cgo and libpcsclite (Debian: libpcsclite-dev to build,
// pcscd to run). Its tests run the real pcscd with vsmartcard vpcd readers
// (package pcsc/pcsctest, shared/hil.md).
package pcsc
