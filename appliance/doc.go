// Package appliance wires one samrack appliance: the replicated state
// (bbolt-backed in single-node mode), the dev PKI, the audit log, the rack of
// SAMs (the simulated rack by default), the reader-facing dispatcher and the
// loopback admin API. samrackd is a thin main around Run.
package appliance
