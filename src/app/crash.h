#pragma once
// A crash leaves its backtrace in the log: a media server dies in a
// streaming thread, inside a library, on a timing nobody can replay, and
// the log (the journal, a test's artifact, CI's output) is often all there
// is. The process still dies of the same signal, with its core dump.

namespace tessera::app {

// Installs the handler for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT. It
// writes "fatal signal N (name) in thread T; backtrace:" and the thread's
// frames (library functions by name, tessera's as offsets for
// `addr2line -f -C -e tessera`) to stderr, then dies of the signal. Under
// AddressSanitizer it installs nothing: ASan reports crashes itself.
// `journal`: stderr is the journal, whose priority prefix the first line takes.
void reportCrashes(bool journal) noexcept;

} // namespace tessera::app
