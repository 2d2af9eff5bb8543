// Package samtest holds fakes of the interfaces of package sam, for tests:
// a scripted Transport, record and playback of GA 467 frames, a fake
// CardLink and an in-memory SAM. It is the gpiotest of periph.io for SAMs.
//
// None of this is for production: the fakes keep everything in memory and
// trade speed for clear failure reports.
//
// Typical uses:
//
//   - unit tests of a SAM host (package samhost) script the module with
//     Transport: expect a command, give a reply, an error, or hang;
//   - hardware teams record a session with a real module through Recorder,
//     check the text form into testdata, and replay it in CI with Playback;
//   - rack and pool tests use SAM, whose errors are set per method and
//     whose calls are counted;
//   - every driver runs Conformance, one body of subtests (status, SAM ID,
//     reads of every card type, every SW3 error, card-link failure, hang,
//     removal, close, concurrency) against its own transport with a
//     virtual SAM behind it: a pipe (sim), a pty (serial), pcscd and vpcd
//     (pcsc). Its doc comment is the contract a new driver must meet.
package samtest
