#pragma once
// The command lines on stdin (docs/client.md), for the one session of a
// process or for a --count group. Thread: main.
#include <functional>
#include <string>
#include <string_view>

#include <glib.h>

namespace tessera::client {

class StdinLines {
public:
    // `line` gets each complete line (and a last one without a newline at
    // the end of input), `end` is called once when input ends.
    StdinLines(std::function<void(std::string_view)> line, std::function<void()> end);
    ~StdinLines();
    StdinLines(const StdinLines&) = delete;
    StdinLines& operator=(const StdinLines&) = delete;

private:
    void onReadable(bool eof);
    static gboolean onReadableCb(GIOChannel*, GIOCondition condition, gpointer user) noexcept;

    std::function<void(std::string_view)> m_line;
    std::function<void()> m_end;
    GIOChannel* m_channel = nullptr; // Owned.
    guint m_watch = 0;
    std::string m_buffer;          // a partial line
    bool m_discardingLine = false; // skipping the rest of an overlong line
};

} // namespace tessera::client
