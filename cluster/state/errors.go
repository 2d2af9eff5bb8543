package state

import "errors"

// Errors returned by this package. Errors from Apply that are not listed
// here are bugs: commands are validated before they are applied.
var (
	// ErrInvalidCommand reports a command that fails validation or cannot
	// be decoded. Validate wraps it with the reason.
	ErrInvalidCommand = errors.New("state: invalid command")

	// ErrUnknownReader is the deterministic outcome of a command about a
	// reader that is not in the registry (SetReaderStatus,
	// RecordAuthFailure, ResetAuthFailures). The state is unchanged.
	ErrUnknownReader = errors.New("state: unknown reader")

	// ErrBadSnapshot reports a snapshot that cannot be restored; the state
	// is unchanged.
	ErrBadSnapshot = errors.New("state: bad snapshot")

	// ErrBadCardList reports a malformed line of a card list; the error
	// names the line number.
	ErrBadCardList = errors.New("state: bad card list")

	// ErrUnknownOperator is the deterministic outcome of setting the role
	// of, or revoking, an operator identity that does not exist.
	ErrUnknownOperator = errors.New("state: unknown operator")

	// ErrOperatorRevoked is the deterministic outcome of changing a revoked
	// operator identity: names of revoked identities are not reused.
	ErrOperatorRevoked = errors.New("state: operator revoked")

	// ErrClosed reports use of a closed Store.
	ErrClosed = errors.New("state: store closed")
)
