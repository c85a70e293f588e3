#include "signals.h"

#include <gst/gst.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <system_error>

#include "tessera/glib/raii.h"

GST_DEBUG_CATEGORY_EXTERN(tessera_app_debug);
#define GST_CAT_DEFAULT tessera_app_debug

namespace tessera::app {
namespace {

sigset_t watched() {
    sigset_t set;
    sigemptyset(&set);
    for (const int signal : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, signal);
    return set;
}

} // namespace

sigset_t SignalWatch::block() {
    const sigset_t set = watched();
    sigset_t previous;
    pthread_sigmask(SIG_BLOCK, &set, &previous);
    return previous;
}

SignalWatch::SignalWatch(std::function<void(int)> deliver, std::chrono::seconds grace, std::chrono::seconds teardown)
    : m_deliver(std::move(deliver)), m_grace(grace), m_teardown(teardown) {
    const sigset_t set = watched();
    m_signalFd = signalfd(-1, &set, SFD_CLOEXEC);
    if (m_signalFd < 0) throw std::system_error(errno, std::generic_category(), "signalfd");
    m_wakeFd = eventfd(0, EFD_CLOEXEC);
    if (m_wakeFd < 0) {
        const int error = errno;
        close(m_signalFd);
        throw std::system_error(error, std::generic_category(), "eventfd");
    }
    m_thread = std::thread([this] { run(); });
}

SignalWatch::~SignalWatch() {
    m_finished = true;
    eventfd_write(m_wakeFd, 1);
    m_thread.join();
    close(m_wakeFd);
    close(m_signalFd);
}

void SignalWatch::tearingDown() {
    m_tearingDown = true;
    eventfd_write(m_wakeFd, 1);
}

// Thread: the signal thread.
void SignalWatch::run() noexcept {
    using Clock = std::chrono::steady_clock;
    std::optional<Clock::time_point> deadline, firstStop;
    bool tearingDown = false;
    auto bound = [&](Clock::time_point at) { deadline = deadline ? std::min(*deadline, at) : at; };
    for (;;) {
        int timeoutMs = -1;
        if (deadline) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
            timeoutMs = static_cast<int>(std::max<std::chrono::milliseconds::rep>(left.count(), 0));
        }
        pollfd fds[] = {{m_signalFd, POLLIN, 0}, {m_wakeFd, POLLIN, 0}};
        if (poll(fds, 2, timeoutMs) < 0 && errno != EINTR) {
            GST_ERROR("signal thread: poll failed: %s; stops are no longer bounded", g_strerror(errno));
            return;
        }
        if (m_finished) return;
        if (fds[1].revents & POLLIN) {
            eventfd_t ignored;
            eventfd_read(m_wakeFd, &ignored);
        }
        if (m_tearingDown && !tearingDown) {
            tearingDown = true;
            bound(Clock::now() + m_teardown);
        }
        signalfd_siginfo info;
        if ((fds[0].revents & POLLIN) && read(m_signalFd, &info, sizeof info) == sizeof info) {
            const int signal = static_cast<int>(info.ssi_signo);
            // A first stop has the recordings' grace and then the teardown; a
            // second one quits the main loop at once.
            if (signal != SIGHUP) {
                bound(Clock::now() + (firstStop ? m_teardown : m_grace + m_teardown));
                if (!firstStop) firstStop = Clock::now();
            }
            glib::guarded("delivering a signal", [&] { m_deliver(signal); });
        }
        if (deadline && Clock::now() >= *deadline) {
            const double since = firstStop ? std::chrono::duration<double>(Clock::now() - *firstStop).count() : 0.0;
            GST_ERROR("STOP OVERRAN ITS BOUND: %s still not done %.1f s after the stop signal; exiting with status 0 "
                      "now, the teardown unfinished. This is a bug: please report it with this log.",
                      tearingDown ? "tearing down rooms and connections" : "the main loop", since);
            _exit(0);
        }
    }
}

} // namespace tessera::app
