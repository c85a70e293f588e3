#include "crash.h"

#include <execinfo.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <initializer_list>

namespace tessera::app {

#if defined(__SANITIZE_ADDRESS__)

void reportCrashes(bool) noexcept {}

#else

namespace {

bool g_journal = false;

// Thread: the one that crashed. Only async-signal-safe calls: write(2),
// snprintf into a local buffer (no allocation for these formats), and
// backtrace(), whose one allocation (loading libgcc) reportCrashes made.
void onFatalSignal(int signal) noexcept {
    char line[160];
    const int n = std::snprintf(line, sizeof line, "%stessera: fatal signal %d (%s) in thread %ld; backtrace:\n",
                                g_journal ? "<2>" : "", signal, sigabbrev_np(signal), syscall(SYS_gettid));
    if (n > 0) {
        [[maybe_unused]] const auto written =
            write(STDERR_FILENO, line, std::min(static_cast<std::size_t>(n), sizeof line - 1));
    }
    void* frames[64];
    backtrace_symbols_fd(frames, backtrace(frames, 64), STDERR_FILENO);
    // SA_RESETHAND restored the default action: die of the signal, as if unhandled.
    raise(signal);
}

} // namespace

void reportCrashes(bool journal) noexcept {
    g_journal = journal;
    void* frame[1];
    backtrace(frame, 1);
    struct sigaction action {};
    action.sa_handler = onFatalSignal;
    action.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    for (const int signal : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) sigaction(signal, &action, nullptr);
}

#endif

} // namespace tessera::app
