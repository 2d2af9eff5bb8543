package samhost

// MaxExchanges exposes maxExchanges to the tests of package samhost_test.
const MaxExchanges = maxExchanges
