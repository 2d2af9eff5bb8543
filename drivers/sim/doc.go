// Package sim is samrack's honest virtual hardware, the appliance's embedded
// default: a virtual resident ID card (Card), a virtual GA 467 SAM-V module
// (SAM) that reads it through the card-frame tunnel, and virtual GPIO lines
// (Line) for slot power and LEDs.
//
// The card and the SAM speak samrack's own card scheme (package idcard):
// real shape — ISO 14443 Type B, ISO 7816-4 APDUs, mutual authentication, a
// session key, encrypted and MACed reads, real file sizes and timings — but
// not the real (secret) crypto. Nothing above the drivers can tell a virtual
// SAM from a real one: the SAM speaks GA 467 frames on a byte stream (Serve:
// a pipe, a pty, later vpcd), and Open wires one to a samhost.Host through an
// in-memory pipe. The driver "sim" is registered with package sam; its dev
// string is a seed.
//
// Identities are synthetic and deterministic from a seed (GenerateIdentity,
// NewCard): common Chinese names, real region codes and names, ID numbers
// with valid check digits, validity periods by age, for all four card types.
// They are still shaped like personal data; treat them like it in logs.
// Card files (SaveCard, LoadCard) are test data only.
//
// Faults for health checks and chaos tests can be set at run time: hang,
// error codes for the next N frames or for one command, extra delay, vanish
// (as if unplugged), self-test failure; and power through PowerLine.
//
// Lock order: SAM.op before SAM.mu; Line.mu before SAM.mu (a power line
// calls PowerOn/PowerOff with its own lock held; the SAM never calls a line).
package sim
