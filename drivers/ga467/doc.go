// Package ga467 is the host side of the GA 467 (GA/T 467-2019) SAM-V frame
// protocol: the frame codec in both directions, the typed SW3 status errors,
// the SAM ID format, the read-reply codec, a framed stream (Conn) with
// resynchronisation after line noise, and the decoder of the 256-byte text
// block of every card type.
//
// Frame layout (GA/T 467-2019, as public host implementations send and
// parse it):
//
//	host → SAM: AA AA AA 96 69 | LEN(2, BE) | CMD | PARA | DATA… | CHK
//	SAM → host: AA AA AA 96 69 | LEN(2, BE) | SW1 SW2 SW3 | DATA… | CHK
//
// LEN counts every byte after itself, CHK included; CHK is the XOR of every
// byte after the preamble up to CHK.
//
// # Byte order of the multi-byte fields
//
// samrack's simulator and host both produce every field below, so a wrong
// order would go unnoticed between them; each is fixed by public host code
// where there is any, and said so here where there is none.
//
//   - LEN: big-endian. Public host code computes it as b[5]*256+b[6]
//     (HslCommunication's SAMSerial, github.com/dathlin/HslCommunication;
//     DKCloudID's IDCardData.java).
//   - Read reply lengths (30 01, 30 10): big-endian, `01 00 04 00` for text
//     256 and photo 1024. DKCloudID's IDCardData.java
//     (github.com/lochyhuang/DKCloudID_UART_Andoird) reads them as
//     (b[10]<<8)|b[11] and (b[12]<<8)|b[13]. See ReplyOrder and ReadReply.
//     The third (fingerprint) length of 30 10 is read in the same order; no
//     public host code we found parses it, so that is an inference from
//     the first two and from the published `01 00 04 00 04 00`.
//   - SAM ID (12 FF): little-endian, u16 u16 u32 u32 u32. HslCommunication's
//     SAMSerial.ExtractSafeModuleNumber prints data[10] and data[12] (the
//     low bytes of the two u16) and BitConverter.ToInt32 (little-endian) at
//     offsets 14, 18 and 22 of the frame. See SAMID.
//   - Find reply (20 01, SW3 9F): 4 bytes of management information that
//     no public host code interprets (they check SW3 9F only); samrack
//     passes them through as opaque bytes and gives them no byte order.
//   - Select reply (20 02): the 8-byte card serial, opaque bytes in the
//     order the card sends them (the blacklist key); no byte order applies.
//   - The 256-byte text block: UTF-16LE code units (public host code decodes
//     it as "UTF-16LE"/"Unicode"). See DecodeText.
//   - The card-frame tunnel below is samrack's own extension: its 2-byte
//     frame lengths are little-endian by samrack's definition; no public
//     code exists for it.
//
// # The card-frame tunnel
//
// samrack adds one documented extension, the card-frame tunnel, so that a SAM
// without an RF front-end of its own can talk to a card held at a remote
// reader: a SAM answers a card command (find, select, read) with SW3
// SW3CardExchange and a list of card frames to run; the host runs them at the
// reader and answers with CmdCardReply carrying the card's replies, until the
// SAM gives the command's final reply. See EncodeCardFrames.
package ga467
