// Package host is the session host: the half of the dispatcher that runs
// beside the SAMs of an appliance. A front end (package dispatch) places a
// session on it; the host leases a SAM, agrees the session key with the
// reader (its ephemeral key share signed with the appliance's node key, so
// that the reader can tell that no appliance on the way swapped it), runs
// the GA 467 find, select and read on the SAM through the card-frame
// tunnel, checks the SAM-authenticated card serial against the declared one
// and against the replicated blacklist, and seals the card's information
// for the reader. The front end only ever sees sealed records and a
// cleartext outcome.
//
// host.go is the contract: Host (Place) and Session (Step, Release), with
// plain-data messages and a deadline on every call, so that it can be
// carried over a multiplexed link between appliances. Local is the
// in-process implementation: one goroutine per placed session, owned by
// the session and ended by its end, by Release, by the host's idle timeout
// when its front end falls silent, or by Close.
package host
