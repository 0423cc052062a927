package play

// MaxMemoryTokens is maxMemoryTokens, for the tests of Memory.
const MaxMemoryTokens = maxMemoryTokens
