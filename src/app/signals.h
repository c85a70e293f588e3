#pragma once
// SIGINT, SIGTERM and SIGHUP, taken by a thread of their own rather than by a
// main-loop source, so that a stop is bounded even when the main loop is
// stuck (the main thread sets a closing room's pipeline to NULL, and a
// pipeline that never gets there would hold it, and every signal with it).
#include <atomic>
#include <chrono>
#include <csignal>
#include <functional>
#include <thread>

namespace tessera::app {

class SignalWatch {
public:
    // Blocks the signals in the calling thread and in every thread it starts
    // afterwards: call first thing in main(), before any thread exists.
    // Returns the mask to restore for commands that do not serve.
    static sigset_t block();

    // Hands each signal to `deliver` on the main context (glib::post). A
    // stop (SIGINT, SIGTERM) that overruns `grace` + `teardown` from the
    // first one, or `teardown` from tearingDown(), ends the process with
    // status 0 from this thread, loudly: the backstop, not the way out.
    SignalWatch(std::function<void(int)> deliver, std::chrono::seconds grace, std::chrono::seconds teardown);
    ~SignalWatch();
    SignalWatch(const SignalWatch&) = delete;
    SignalWatch& operator=(const SignalWatch&) = delete;

    // Thread: main. The main loop stopped: teardown has `teardown` to finish.
    void tearingDown();

private:
    void run() noexcept;

    const std::function<void(int)> m_deliver;
    const std::chrono::seconds m_grace, m_teardown;
    int m_signalFd = -1; // Owned. The blocked signals, read here only.
    int m_wakeFd = -1;   // Owned. An eventfd: tearingDown() or the destructor.
    std::atomic<bool> m_tearingDown{false}, m_finished{false};
    std::thread m_thread; // Last: started once the rest is set up.
};

} // namespace tessera::app
