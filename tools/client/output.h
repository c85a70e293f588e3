#pragma once
// tessera-client's stdout: one JSON object per line (docs/client.md), the
// only thing written there. Thread: main.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace tessera::client {

using Json = nlohmann::ordered_json;

// Adds "ts" (wall-clock ms) to every event from now on (--timestamps); set
// once, before the main loop runs.
void setEventTimestamps(bool on);

// Writes `j` as one line and flushes.
void emit(const Json& j);
// {"event": name, ...fields}; "ts" kept only with --timestamps.
void emitEvent(std::string_view name, Json fields = Json::object());

// Wall-clock time in ms. Thread: any.
double wallMs();
// `v` as text, locale-independent (also for pipeline descriptions).
std::string formatDouble(double v);

} // namespace tessera::client
