#include "output.h"

#include <cmath>
#include <cstdio>

#include <glib.h>

namespace tessera::client {
namespace {

bool g_eventTimestamps = false;

} // namespace

void setEventTimestamps(bool on) { g_eventTimestamps = on; }

void emit(const Json& j) {
    const std::string line = j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
}

void emitEvent(std::string_view name, Json fields) {
    Json j = Json::object();
    j["event"] = name;
    for (auto& [k, v] : fields.items()) j[k] = v;
    if (g_eventTimestamps && !j.contains("ts")) j["ts"] = std::round(wallMs() * 10.0) / 10.0;
    if (!g_eventTimestamps) j.erase("ts");
    emit(j);
}

double wallMs() { return static_cast<double>(g_get_real_time()) / 1000.0; }

std::string formatDouble(double v) {
    char buffer[G_ASCII_DTOSTR_BUF_SIZE];
    return g_ascii_dtostr(buffer, sizeof buffer, v); // locale-independent
}

} // namespace tessera::client
