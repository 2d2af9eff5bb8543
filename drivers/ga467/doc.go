// Package ga467 is the host side of the GA 467 (GA/T 467-2019) SAM-V frame
// protocol: the frame codec in both directions, the typed SW3 status errors,
// the SAM ID format, a framed stream (Conn) with resynchronisation after line
// noise, and the decoder of the 256-byte text block of every card type.
//
// Frame layout (see shared facts in the repository README and the standard):
//
//	host → SAM: AA AA AA 96 69 | LEN(2, BE) | CMD | PARA | DATA… | CHK
//	SAM → host: AA AA AA 96 69 | LEN(2, BE) | SW1 SW2 SW3 | DATA… | CHK
//
// LEN counts every byte after itself, CHK included; CHK is the XOR of every
// byte after the preamble up to CHK.
//
// samrack adds one documented extension, the card-frame tunnel, so that a SAM
// without an RF front-end of its own can talk to a card held at a remote
// reader: a SAM answers a card command (find, select, read) with SW3
// SW3CardExchange and a list of card frames to run; the host runs them at the
// reader and answers with CmdCardReply carrying the card's replies, until the
// SAM gives the command's final reply. See EncodeCardFrames.
package ga467
